#!/usr/bin/env bash
# The long runs of the studies and of the facades recipe at 128x128 (issue #15, parts 2 and 3):
# every stage a resumable sweep of the project's own, two jobs at a time on the CPU cores
# (hydra/launcher=local_parallel); each job scored by `evaluate` on its final weights as soon
# as it has finished.
# Run from anywhere, in the background, as often as needed:
#   nohup nice bash experiments/long_runs.sh > long_runs.log 2>&1 &
#   LOG_DIR    where the sweeps go (default logs/long_128); the segmenter of the FCN-score too
#   SEGMENTER  a task=segmenter checkpoint (default: trained into LOG_DIR/segmenter first,
#              the command of experiments/fcn_score's segmenter B, about 30 min on one core,
#              and its best checkpoint by validation used; not trained when STAGES is only
#              photo2labels, which scores label maps with the palette instead)
#   RECORDS    where each scored job's record goes (default experiments/records): the small
#              files its report is made of, copied out of the run folder to be committed
#              (python -m pix2pix_lit.report --keep-records), as the run folders stay on
#              the machine that trained them
#   STAGES     which stages, in this order by default (the first ones decide the budget):
#     reference     L1+cGAN, U-Net128, 70x70 PatchGAN, seeds 0 1 2 3, a checkpoint every 5
#                   epochs: the learning curve and the seed-to-seed spread. The row is one
#                   config in all four studies (tests/test_long_runs.py), so it is
#                   trained once and every study's table reads it from here. Four seeds,
#                   as two jobs run at a time: a third would leave a core idle as long.
#     loss          loss_ablation: L1, GAN, cGAN, L1+GAN (seed 0)
#     generator     generator_ablation: the encoder-decoder under L1 and L1+cGAN (seed 0)
#     patch         patch_size: 1x1, 16x16, 286x286 (seed 0)
#     photo2labels  loss_ablation in the other direction: the rows the paper has for it
#                   (L1, cGAN, L1+cGAN; Isola et al. 2017, Table 6), seed 0, the three at
#                   once: 1:43 in all on a 2-core Intel Xeon, where two side by side take
#                   1:18 and leave the third to run alone after them
#     unpaired      paired_vs_unpaired: CycleGAN and U-GAT-IT (seed 0)
#     recipe        the facades recipe, 100 + 100 epochs, seed 0, a checkpoint every 20
#                   epochs: 13 h of one core on a 2-core Intel Xeon, 19 h on an AMD EPYC,
#                   so several sessions; the other core is free for study rows run by hand.
#                   Last: the studies' tables need all their rows, the recipe's table is
#                   read at whichever of its checkpoints the time reached.
# Rerunning resumes: a sweep run again into its folder restores its finished jobs and continues
# the interrupted one from its last.ckpt (ckpt_path=auto); an evaluation already written is
# kept. Each stage's wall time goes to LOG_DIR/wall_times.txt. Resuming needs LOG_DIR: where it
# goes with the machine (a machine lent for one session), a job's checkpoints go too, and what
# is left of it is its record in RECORDS, once committed.
set -euo pipefail
shopt -s nullglob  # a stage folder without jobs yet has nothing to score
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
LOG_DIR=${LOG_DIR:-logs/long_128}
RECORDS=${RECORDS:-experiments/records}
ALL_STAGES="reference loss generator patch photo2labels unpaired recipe"
STAGES=${STAGES:-$ALL_STAGES}
for name in $STAGES; do
  [[ " $ALL_STAGES " == *" $name "* ]] || {
    echo "error: unknown stage '$name' in STAGES; valid: $ALL_STAGES" >&2
    exit 2
  }
done
DATA=(paths.data_dir=../shared/data data.load_size=143 data.crop_size=128)
# fp32 on every host: perf=fast picks bf16 on a CPU with AMX or AVX512-BF16, and the rows of
# one table, each trained on whichever machine a session was lent (the reference row in fp32
# on an AVX2 host), would then differ in precision as well as in what they study
RUN=(perf=fast trainer.precision=32-true trainer=cpu data.num_workers=1
     trainer.enable_progress_bar=false hydra/launcher=local_parallel ckpt_path=auto)
# the studies' budget: 10 + 10 epochs, 8,000 steps of batch 1
BUDGET=(scheduler.n_epochs=10 scheduler.n_epochs_decay=10)
PIX2PIX=("${DATA[@]}" model.num_downs=7 "${BUDGET[@]}" "${RUN[@]}")
# the reference stage's: every 5th epoch's kept as best_epochNNN.ckpt (the stage began before
# callbacks.periodic_checkpoint existed, and its resumed jobs keep the overrides they began with)
EVERY_5_EPOCHS=(callbacks.model_checkpoint.save_top_k=-1
                +callbacks.model_checkpoint.every_n_epochs=5)

mkdir -p "$LOG_DIR"
# one script per LOG_DIR: a second would start the same sweeps' remaining jobs beside the first
command -v flock >/dev/null || { echo "error: long_runs.sh needs flock (util-linux)" >&2; exit 2; }
exec 9>"$LOG_DIR/.long_runs.lock"
flock -n 9 || {
  echo "error: another long_runs.sh is running on LOG_DIR=$LOG_DIR; wait for it or stop it" >&2
  exit 1
}
keep() {  # run or multirun folder, records folder, log: keep its jobs' records
  "$PYTHON" -m pix2pix_lit.report "$1" --keep-records "$2" >>"$3" 2>&1
}

needs_segmenter=false  # photo -> labels scores without one
for name in $STAGES; do [ "$name" = photo2labels ] || needs_segmenter=true; done
SEGMENTER=${SEGMENTER:-}
if [ -z "$SEGMENTER" ] && "$needs_segmenter"; then
  trained=false
  [ -f "$LOG_DIR/segmenter.done" ] || {
    "$PYTHON" -m pix2pix_lit.train task=segmenter paths.data_dir=../shared/data \
      data.num_workers=1 test=true trainer.enable_progress_bar=false \
      "hydra.run.dir=$LOG_DIR/segmenter" ckpt_path=auto >>"$LOG_DIR/segmenter.log" 2>&1
    touch "$LOG_DIR/segmenter.done"
    trained=true
  }
  # its best by validation mIoU (the one kept), as segmenter B of experiments/fcn_score
  best=("$LOG_DIR"/segmenter/checkpoints/best_*.ckpt)
  [ ${#best[@]} -eq 1 ] || {
    echo "error: expected one best_*.ckpt in $LOG_DIR/segmenter/checkpoints, found" \
      "${#best[@]}; see $LOG_DIR/segmenter.log, or give SEGMENTER=<segmenter .ckpt>" >&2
    exit 1
  }
  SEGMENTER=${best[0]}
  if "$trained"; then keep "$LOG_DIR/segmenter" "$RECORDS" "$LOG_DIR/segmenter.log"; fi
fi

# set by each stage before its sweep: the evaluate overrides of its jobs, and whether the
# checkpoints kept along the way are scored too
SCORE=()
ALONG=false
SCORED=false  # whether score_once has evaluated a checkpoint since the records were kept

sweep() {  # folder, overrides...: one resumable sweep into LOG_DIR/folder, each job scored
  local folder=$1 pid
  shift
  "$PYTHON" -m pix2pix_lit.train -m "$@" "hydra.sweep.dir=$LOG_DIR/$folder" \
    >>"$LOG_DIR/$folder.log" 2>&1 &
  pid=$!
  # a finished job is scored while the others train: on the core its end freed at the
  # stage's tail, and before a session's end can stop the stage (a failure here is retried
  # by the strict pass below)
  while kill -0 "$pid" 2>/dev/null; do
    sleep "${POLL_S:-60}"
    score "$folder" || true
  done
  wait "$pid"
  score "$folder"
}

score_once() {  # log, checkpoint, output folder, evaluate overrides...: skipped once written
  local log=$1 ckpt=$2 out=$3
  shift 3
  # evaluate writes metrics.json last, whole: without one, the folder holds at most the
  # images of an evaluation stopped midway (a session's end), which overwrite= replaces
  if [ -f "$out/metrics.json" ]; then return 0; fi
  "$PYTHON" -m pix2pix_lit.evaluate "ckpt_path=$ckpt" "output_dir=$out" overwrite=true "$@" \
    >>"$log" 2>&1
  SCORED=true
}

score() {  # folder: score each finished job's final weights (and kept checkpoints) once,
  # then keep the records of the stage's jobs when one was scored
  local folder=$1 job ckpt
  for job in "$LOG_DIR/$folder"/*/; do
    job=${job%/}
    [ -f "$job/final_metrics.json" ] || continue  # still training (or failed)
    score_once "$LOG_DIR/$folder.log" "$job/checkpoints/last.ckpt" "$job/evaluate" \
      "${SCORE[@]}"
    "$ALONG" || continue
    for ckpt in "$job"/checkpoints/best_epoch*.ckpt "$job"/checkpoints/epoch*.ckpt; do
      score_once "$LOG_DIR/$folder.log" "$ckpt" "${ckpt%.ckpt}_evaluate" "${SCORE[@]}"
    done
  done
  if "$SCORED"; then
    keep "$LOG_DIR/$folder" "$RECORDS/$folder" "$LOG_DIR/$folder.log"
    SCORED=false
  fi
}

stage() {
  SCORE=("segmenter_ckpt=$SEGMENTER")  # labels -> photo: the FCN-score beside L1/PSNR/SSIM
  ALONG=false
  case $1 in
    reference)
      ALONG=true
      sweep reference experiment=loss_ablation_l1_cgan seed=0,1,2,3 "${PIX2PIX[@]}" \
        "${EVERY_5_EPOCHS[@]}" ;;
    loss)
      sweep loss experiment=loss_ablation_l1,loss_ablation_gan,loss_ablation_cgan,loss_ablation_l1_gan \
        seed=0 "${PIX2PIX[@]}" ;;
    generator)
      sweep generator experiment=generator_ablation model=encdec256 loss.lambda_gan=0,1 seed=0 \
        "${PIX2PIX[@]}" ;;
    patch)
      sweep patch experiment=patch_size discriminator=pixel,patch16,image286 seed=0 "${PIX2PIX[@]}" ;;
    photo2labels)
      SCORE=()  # photo -> labels: the label metrics of the facades palette (palette=auto)
      sweep photo2labels experiment=loss_ablation_l1,loss_ablation_cgan,loss_ablation_l1_cgan \
        data.direction=AtoB seed=0 "${PIX2PIX[@]}" hydra.callbacks.device_slots.cpu_jobs=3 ;;
    unpaired)
      # the two models at once, one core each (each a sweep of its own: their model groups differ)
      sweep cyclegan experiment=facades_cyclegan model=resnet6 seed=0 "${DATA[@]}" \
        "${BUDGET[@]}" "${RUN[@]}" &
      local cyclegan=$!
      sweep ugatit experiment=facades_ugatit model=ugatit_light seed=0 "${DATA[@]}" \
        "${BUDGET[@]}" "${RUN[@]}" &
      wait "$!"
      wait "$cyclegan" ;;
    recipe)
      ALONG=true
      sweep recipe experiment=facades_pix2pix seed=0 "${DATA[@]}" model.num_downs=7 "${RUN[@]}" \
        callbacks.periodic_checkpoint.every_n_epochs=20 ;;
  esac
}

for name in $STAGES; do
  [ -f "$LOG_DIR/$name.done" ] && continue
  start=$SECONDS
  stage "$name"
  touch "$LOG_DIR/$name.done"
  echo "$name $((SECONDS - start)) s $(date -u +%FT%TZ)" >>"$LOG_DIR/wall_times.txt"
done
