"""Datasets and LightningDataModules for image-to-image translation (and the DTN's digits)."""

from pix2pix_lit.data.digit_transfer import DigitTransferDataModule
from pix2pix_lit.data.digits import SyntheticDigitsDataModule, UCIDigitsDataModule
from pix2pix_lit.data.download import download_file, extract_archive, fetch_dataset
from pix2pix_lit.data.in_memory import InMemoryPairedDataModule
from pix2pix_lit.data.paired import PairedImageDataModule
from pix2pix_lit.data.paired_dataset import PairedImageDataset
from pix2pix_lit.data.synthetic import SyntheticPairedDataModule, make_synthetic_paired_dataset
from pix2pix_lit.data.unpaired import SyntheticUnpairedDataModule, UnpairedImageDataModule

__all__ = [
    "DigitTransferDataModule",
    "InMemoryPairedDataModule",
    "PairedImageDataModule",
    "PairedImageDataset",
    "SyntheticDigitsDataModule",
    "SyntheticPairedDataModule",
    "SyntheticUnpairedDataModule",
    "UCIDigitsDataModule",
    "UnpairedImageDataModule",
    "download_file",
    "extract_archive",
    "fetch_dataset",
    "make_synthetic_paired_dataset",
]
