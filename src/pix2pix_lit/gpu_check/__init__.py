"""``make gpu-check``: everything that needs a GPU, checked and timed in one time-boxed command.

A lent GPU machine comes for minutes, fresh, without the project's Hydra/albumentations/W&B;
``experiments/throughput/gpu_check.sh`` installs them from the carried wheels, then runs
:mod:`~pix2pix_lit.gpu_check.cli`, which runs each stage of :mod:`~pix2pix_lit.gpu_check.plan`
as a subprocess with its own time limit inside an overall budget (8 minutes by default) and
rewrites one table (markdown + JSON, the device named) after every stage, so a stage that hangs
or runs long costs only its own box and what finished stays. ``--dry-run`` runs the same kinds
of stage on a CPU at tiny sizes (the test suite does, so CI proves the command works before a
GPU sees it).
"""
