#!/usr/bin/env bash
# The DTN digits study (Taigman et al. 2017, Table 1) at the CPU budget: the source classifier
# f, the evaluator C_T, then one DTN run per row; the table and figure go into README.md.
# Run from anywhere: experiments/dtn/run.sh
#   LOG_DIR  where the runs go (default logs/dtn_study); the digit sets are cached in LOG_DIR/data
#   EPOCHS   DTN training length per row, in epochs of 50 batches of 32 (default 6)
#   PARALLEL rows trained at once (default 1)
#   SEEDS    the seeds of every row (default 42); a row's run goes to LOG_DIR/rows/<row>_s<seed>
#   ROWS     which rows (default: all six, in the table's order)
# Rerunning the script resumes: finished runs are kept, interrupted ones continue from last.ckpt.
# f and C_T are trained only when LOG_DIR holds no checkpoint of them yet.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
LOG_DIR=${LOG_DIR:-logs/dtn_study}
EPOCHS=${EPOCHS:-6}
PARALLEL=${PARALLEL:-1}
SEEDS=${SEEDS:-42}
ROWS=${ROWS:-full no_tid no_const neither binary_d g_without_f}
RUN=(trainer=cpu trainer.enable_progress_bar=false trainer.log_every_n_steps=10
     "paths.data_dir=$LOG_DIR/data")
# the CPU budget's f: the paper's four blocks at half width (32, 64, 128 filters, 128 features)
CLASSIFIER=(task=digit_classifier "model.widths=[32,64,128]" test=true)
SOURCE=(data.num_images.train=10000 data.num_images.test=1000)

timed() {  # name, command...: run it, its wall time to LOG_DIR/wall_times.txt
  local name=$1 start=$SECONDS
  shift
  "$@" >>"$LOG_DIR/$name.log" 2>&1
  echo "$name $((SECONDS - start)) s" >>"$LOG_DIR/wall_times.txt"
}
mkdir -p "$LOG_DIR"
# 1. f: a classifier of the source (rendered digits), 3 epochs over 10,000 images
[ -f "$LOG_DIR/f/checkpoints/last.ckpt" ] || timed f "$PYTHON" -m pix2pix_lit.train "${CLASSIFIER[@]}" "${SOURCE[@]}" scheduler.n_epochs=3 \
  "${RUN[@]}" seed=42 "hydra.run.dir=$LOG_DIR/f"
# 2. C_T: a classifier of the target (UCI digits), 10 epochs over its 1,438 training images
[ -f "$LOG_DIR/c_t/checkpoints/last.ckpt" ] || timed c_t "$PYTHON" -m pix2pix_lit.train "${CLASSIFIER[@]}" data=uci_digits scheduler.n_epochs=10 \
  "${RUN[@]}" seed=42 "hydra.run.dir=$LOG_DIR/c_t"
# 3. the DTN rows: g and D at a quarter of the paper's widths, EPOCHS x 50 steps of 32 + 32
DTN=(task=dtn "task.encoder_ckpt=$LOG_DIR/f/checkpoints/last.ckpt"
     "task.evaluator_ckpt=$LOG_DIR/c_t/checkpoints/last.ckpt" "data.source.num_images.train=10000"
     data.source.num_images.test=1000 data.batch_size=32 model.ngf=16 discriminator.ndf=32
     "scheduler.n_epochs=$EPOCHS" trainer.limit_train_batches=50)
declare -A ROW_OVERRIDES=(
  [full]=""
  [no_tid]="loss.beta=0"
  [no_const]="loss.alpha=0"
  [neither]="loss.alpha=0 loss.beta=0"
  [binary_d]="loss.discriminator=binary"
  [g_without_f]="task.train_encoder=true"
)
started=0
runs=()
for seed in $SEEDS; do
  for row in $ROWS; do
    run=${row}_s${seed}
    runs+=("$LOG_DIR/rows/$run")
    # finished runs are skipped; an interrupted one resumes from its last.ckpt (ckpt_path=auto)
    grep -q "^done" "$LOG_DIR/rows/$run.status" 2>/dev/null && continue
    # shellcheck disable=SC2086  # a row is several overrides
    ( OMP_NUM_THREADS=1 timed "$run" "$PYTHON" -m pix2pix_lit.train "${DTN[@]}" ${ROW_OVERRIDES[$row]} \
        "${RUN[@]}" "seed=$seed" "hydra.run.dir=$LOG_DIR/rows/$run" ckpt_path=auto \
      && echo done >"$LOG_DIR/rows/$run.status" ) &
    if (( ++started % PARALLEL == 0 )); then wait; fi
  done
done
wait
"$PYTHON" -m pix2pix_lit.report "${runs[@]}" --out "$LOG_DIR/report" --readme experiments/dtn/README.md
