"""``python -m pix2pix_lit.bench``: the command line lives in :mod:`pix2pix_lit.bench.cli`."""

from pix2pix_lit.bench.cli import main

if __name__ == "__main__":
    main()
