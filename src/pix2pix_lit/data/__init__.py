"""Datasets and LightningDataModules for aligned image-to-image translation."""

from pix2pix_lit.data.download import download_file, extract_archive, fetch_dataset
from pix2pix_lit.data.in_memory import InMemoryPairedDataModule
from pix2pix_lit.data.paired import PairedImageDataModule, PairedImageDataset
from pix2pix_lit.data.synthetic import SyntheticPairedDataModule, make_synthetic_paired_dataset
from pix2pix_lit.data.unpaired import SyntheticUnpairedDataModule, UnpairedImageDataModule

__all__ = [
    "InMemoryPairedDataModule",
    "PairedImageDataModule",
    "PairedImageDataset",
    "SyntheticPairedDataModule",
    "SyntheticUnpairedDataModule",
    "UnpairedImageDataModule",
    "download_file",
    "extract_archive",
    "fetch_dataset",
    "make_synthetic_paired_dataset",
]
