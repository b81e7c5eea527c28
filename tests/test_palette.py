"""The facades palette (conf/palette/facades.yaml) and how it was derived from the data.

CMP Facade Database label maps (cmp_facade_db/base/*.png) hold class indices 1-12, named in the
XML annotations; the pix2pix facades images draw the same labels in colour (right half). For
each facades image that is a CMP base image (facades_to_cmp_base_mapping.csv), the CMP index map
is resized to 256x256 and laid over the colour labels; a class's colour is the most frequent
RGB value of its pixels at least 2 px from any class border (JPEG smears colours across them).
With the data present (../shared/data), the test re-derives the palette and compares.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from pix2pix_lit.inference.evaluation import load_palette
from pix2pix_lit.metrics import class_indices

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data"
CMP_BASE = SHARED / "cmp_facade_db/base"
CMP_NAMES = ("background", "facade", "window", "door", "cornice", "sill", "balcony", "blind",
             "deco", "molding", "pillar", "shop")  # fmt: skip
BORDER = 2
# JPEG moves a flat colour by a few levels; the derived modes agree with the file within this.
TOLERANCE = 6


def _matched_pairs() -> list[tuple[Path, Path]]:
    """(facades A|B jpg, CMP base label png) for every facades image that is a CMP base image."""
    with open(SHARED / "facades_to_cmp_base_mapping.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["cmp_base_id_if_matched"]]
    return [
        (
            SHARED / "facades" / r["split"] / r["file"],
            CMP_BASE / f"{r['cmp_base_id_if_matched']}.png",
        )
        for r in rows
    ]


def _interior(indices: np.ndarray) -> np.ndarray:
    """Pixels whose (2*BORDER+1)^2 neighbourhood has a single class."""
    windows = sliding_window_view(np.pad(indices, BORDER, mode="edge"), (2 * BORDER + 1,) * 2)
    return (windows.min(axis=(-1, -2)) == indices) & (windows.max(axis=(-1, -2)) == indices)


def derive_palette(pairs: list[tuple[Path, Path]]) -> dict[int, tuple[int, int, int]]:
    """CMP class index -> the most frequent RGB value of its interior pixels in the facades labels."""
    pixels: dict[int, list[np.ndarray]] = {}
    for facades_file, cmp_labels in pairs:
        labels = np.asarray(Image.open(facades_file).convert("RGB"))[:, 256:].astype(np.int64)
        indices = np.asarray(Image.open(cmp_labels).resize((256, 256), Image.NEAREST))
        codes = (labels[..., 0] << 16) | (labels[..., 1] << 8) | labels[..., 2]
        interior = _interior(indices)
        for index in np.unique(indices):
            pixels.setdefault(int(index), []).append(codes[interior & (indices == index)])
    palette = {}
    for index, chunks in pixels.items():
        values, counts = np.unique(np.concatenate(chunks), return_counts=True)
        mode = int(values[counts.argmax()])
        palette[index] = ((mode >> 16) & 255, (mode >> 8) & 255, mode & 255)
    return palette


def xml_class_names() -> dict[int, str]:
    """CMP class index -> name, from the XML annotations (background appears only in PNGs)."""
    names: dict[int, set[str]] = {}
    pattern = re.compile(r"<label>\s*(\d+)\s*</label>\s*<labelname>\s*(\w+)\s*</labelname>")
    for path in sorted(CMP_BASE.glob("*.xml")):
        for index, name in pattern.findall(path.read_text()):
            names.setdefault(int(index), set()).add(name)
    assert all(len(n) == 1 for n in names.values()), names
    return {index: n.pop() for index, n in names.items()}


def test_facades_palette_has_the_12_cmp_classes_in_index_order() -> None:
    palette = load_palette("facades")
    assert palette.names == CMP_NAMES
    colors = np.array(palette.colors)
    gaps = np.sqrt(((colors[:, None] - colors[None]) ** 2).sum(-1))
    assert gaps[~np.eye(len(colors), dtype=bool)].min() > 50  # far apart: JPEG cannot swap them


@pytest.fixture(scope="module")
def cmp_data() -> Path:
    if not (CMP_BASE.is_dir() and (SHARED / "facades_to_cmp_base_mapping.csv").is_file()):
        pytest.skip(f"CMP Facade Database / facades data not found under {SHARED}")
    return CMP_BASE


def test_class_names_match_the_cmp_xml_annotations(cmp_data: Path) -> None:
    names = xml_class_names()
    assert names == {i + 1: name for i, name in enumerate(CMP_NAMES) if name != "background"}


def test_palette_rederived_from_the_data_matches_the_config(cmp_data: Path) -> None:
    pairs = _matched_pairs()[::3]  # a third of the 310 images pins every colour down
    derived = derive_palette(pairs)
    assert sorted(derived) == list(range(1, 13))
    palette = load_palette("facades")
    for index, color in derived.items():
        expected = palette.colors[index - 1]
        assert np.abs(np.subtract(color, expected)).max() <= TOLERANCE, (index, color, expected)


def test_nearest_palette_colour_recovers_the_cmp_classes(cmp_data: Path) -> None:
    """What the label metrics rely on: colour → class gives back the annotated class."""
    palette = load_palette("facades")
    agreement = []
    for facades_file, cmp_labels in _matched_pairs()[::30]:
        labels = np.asarray(Image.open(facades_file).convert("RGB"))[:, 256:]
        indices = np.asarray(Image.open(cmp_labels).resize((256, 256), Image.NEAREST))
        image = torch.from_numpy(labels.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        classes = class_indices(image, palette)[0].numpy() + 1
        agreement.append((classes == indices)[_interior(indices)].mean())
    assert min(agreement) > 0.95 and np.mean(agreement) > 0.98
