"""One training run: building it from the config, its run folder, resuming it, writing its files.

:mod:`~pix2pix_lit.training.run` (build data, task, trainer; fit; test; final metrics),
:mod:`~pix2pix_lit.training.run_folder` (one owner per run folder, its record),
:mod:`~pix2pix_lit.training.resume` (what a resumed run starts from, which settings may
change), :mod:`~pix2pix_lit.training.storage` (files written whole or not at all) and
:mod:`~pix2pix_lit.training.extras` (the template-style extras before training).
"""
