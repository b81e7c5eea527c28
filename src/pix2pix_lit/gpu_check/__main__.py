"""``python -m pix2pix_lit.gpu_check``: the command line lives in :mod:`pix2pix_lit.gpu_check.cli`."""

from pix2pix_lit.gpu_check.cli import main

if __name__ == "__main__":
    main()
