#!/usr/bin/env bash
# pix2pix vs CycleGAN vs U-GAT-IT (light) on CMP Facades labels -> photo, each trained for the
# same wall-clock budget on the CPU, then scored on the first 25 paired test images.
# Run from anywhere: experiments/paired_vs_unpaired/run.sh
#   DATA_DIR  folder holding facades/ (default ../shared/data if present, else data)
#   LOG_DIR   where the runs go (default logs/paired_vs_unpaired)
#   BUDGET    training time per method, DD:HH:MM:SS (default 00:00:02:00)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
DATA_DIR=${DATA_DIR:-$([ -d ../shared/data/facades/train ] && echo ../shared/data || echo data)}
LOG_DIR=${LOG_DIR:-logs/paired_vs_unpaired}
BUDGET=${BUDGET:-00:00:02:00}

# 128x128 crops (resized to 143 = 128 * 286/256, the paper's jitter); no validation during
# training, so the whole budget is training; test=true scores the final weights on 25 test
# images (the unpaired generators take 1-3 s per 128x128 image on a 2-core CPU).
COMMON=(
  trainer=cpu "+trainer.max_time=$BUDGET" trainer.limit_val_batches=0
  trainer.num_sanity_val_steps=0 +trainer.limit_test_batches=25 trainer.log_every_n_steps=10
  trainer.enable_progress_bar=false
  callbacks=none test=true optimized_metric=test/L1
  data.load_size=143 data.crop_size=128 data.num_workers=1
  "paths.data_dir=$DATA_DIR" "paths.log_dir=$LOG_DIR"
)
ROWS=(
  "experiment=facades_pix2pix model=unet128"
  "experiment=facades_cyclegan model=resnet6"
  "experiment=facades_ugatit model=ugatit_light"
)
for row in "${ROWS[@]}"; do
  TIMEFORMAT="${row%% *}: %R s wall, %U s user, %S s sys"
  # shellcheck disable=SC2086  # a row is several overrides
  time "$PYTHON" -m pix2pix_lit.train $row "${COMMON[@]}" >/dev/null
done
"$PYTHON" experiments/paired_vs_unpaired/summarize.py "$LOG_DIR"
