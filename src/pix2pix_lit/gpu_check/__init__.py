"""``make gpu-check``: everything that needs a GPU, checked and timed in one time-boxed command.

A lent GPU machine comes for minutes, fresh, without the project's Hydra/albumentations/W&B
(carried as wheels). :mod:`~pix2pix_lit.gpu_check.cli` runs each stage of
:mod:`~pix2pix_lit.gpu_check.plan` as a subprocess with its own time limit inside an overall
budget (8 minutes by default), and rewrites one table (markdown + JSON, the device named) after
every stage, so a stage that hangs or runs long costs only its own box and what finished stays.
``--dry-run`` runs the same stages on a CPU at tiny sizes (the test suite does, so CI proves
the command works before a GPU sees it).

This package's ``__init__``, ``cli``, ``plan``, ``runner``, ``results``, ``report`` and
``install`` modules use the standard library only: they run before the wheels are installed.
"""
