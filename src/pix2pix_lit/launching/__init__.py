"""How runs are launched: the job of a sweep, the processes of a DDP run, the device of a
parallel sweep's worker.

:mod:`~pix2pix_lit.launching.sweep_job` (a multirun job's place, its isolation from the next
job, the value it returns to the sweeper), :mod:`~pix2pix_lit.launching.ddp` (the strategy that
wraps each network in its own DistributedDataParallel),
:mod:`~pix2pix_lit.launching.ddp_processes` (the command that starts a sweep job's extra DDP
processes), :mod:`~pix2pix_lit.launching.device_slots` (``hydra/launcher=local_parallel``'s
device slots), :mod:`~pix2pix_lit.launching.slot_locks` (their lock files, which say what each
worker is doing) and :mod:`~pix2pix_lit.launching.sweep_stop` (stopping such a sweep as one).
"""
