"""How a paired dataset stores its pairs on disk: one small class per layout.

A layout finds the pairs of a folder (:meth:`find`), tells the size of a pair from the sizes of
its files (:meth:`pair_size`) and reads a pair (:meth:`read`); the data modules do the rest
(splits, scanning, checks, transforms) the same way for every layout. To support another way of
storing pairs, write a class with these three methods and add it to :data:`PAIR_LAYOUTS`.

* ``combined`` (the pix2pix layout): each file holds A and B side by side (A|B), any even
  width, the halves of any aspect ratio.
* ``separate``: A and B in two folders (any names; they may be the same folder, told apart by
  ``a_glob``/``b_glob``), matched by file name without extension and sub-folder,
  ``cmp_b0001.jpg`` <-> ``cmp_b0001.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from pix2pix_lit.data.io import find_images, read_rgb
from pix2pix_lit.errors import ConfigError

Size = tuple[int, int]  # (width, height)
UNMATCHED_POLICIES: tuple[str, ...] = ("error", "skip")


@dataclass(frozen=True)
class Pair:
    """Where one aligned pair is stored: A and B in files ``a`` and ``b``, or (``b`` None)
    side by side in ``a``. ``key`` names the pair in messages and split lists."""

    key: str
    a: Path
    b: Path | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.a,) if self.b is None else (self.a, self.b)


@dataclass(frozen=True)
class Found:
    """The pairs of a folder; ``unmatched``: files without a partner (``file (reason)``), which
    ``data.unmatched`` turns into an error or skips; ``ignored``: hidden or non-image files."""

    pairs: list[Pair]
    unmatched: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


class PairLayout(Protocol):
    """What a data module needs from a way of storing pairs."""

    name: str

    def find(self, folder: Path) -> Found:
        """The pairs stored under ``folder`` (a split folder, or the dataset root)."""
        ...

    def pair_size(self, pair: Pair, sizes: dict[Path, Size]) -> Size | str:
        """The (width, height) of the pair's A image, given every file's size; or a problem."""
        ...

    def read(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        """A and B as stored, H x W x 3 uint8 RGB each."""
        ...

    def describe(self, folder: Path) -> str:
        """What ``folder`` should hold, for the message when it holds no pairs."""
        ...


def split_halves(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left and right halves of an A|B image (of an even width)."""
    half = ab.shape[1] // 2
    return np.ascontiguousarray(ab[:, :half]), np.ascontiguousarray(ab[:, half : 2 * half])


def files_as_pairs(folder: Path) -> Found:
    """Every image under ``folder`` as a pair of its own (keyed by its relative path)."""
    listing = find_images(folder)
    prefix = len(str(folder)) + 1  # str slicing: Path.relative_to is slow for 50k files
    pairs = [Pair(str(p)[prefix:], p) for p in listing.images]
    return Found(pairs, ignored=listing.ignored)


@dataclass(frozen=True)
class CombinedLayout:
    """A|B images: A is the left half of each file, B the right half."""

    name: str = "combined"

    def find(self, folder: Path) -> Found:
        return files_as_pairs(folder)

    def pair_size(self, pair: Pair, sizes: dict[Path, Size]) -> Size | str:
        width, height = sizes[pair.a]
        if width % 2:
            return f"{width}x{height}: an A|B image needs an even width, A left and B right"
        return width // 2, height

    def read(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        return split_halves(read_rgb(pair.a))

    def describe(self, folder: Path) -> str:
        return f"{folder} contains no images; put A|B images there (A left, B right)"


@dataclass(frozen=True)
class SeparateLayout:
    """A and B images in the folders ``a_dir`` and ``b_dir`` (relative to the split folder),
    the files whose names match ``a_glob`` and ``b_glob``; a pair is an A and a B file with
    the same path relative to their folder, extension aside.

    Files without a partner are reported (``unmatched``); two files of one side with the same
    name but different extensions are an error (tell them apart with the globs).
    """

    a_dir: str = "A"
    b_dir: str = "B"
    a_glob: str = "*"
    b_glob: str = "*"
    name: str = "separate"

    def _side(self, folder: Path, side: str) -> tuple[dict[str, Path], list[str], list[Path]]:
        subdir, pattern = (self.a_dir, self.a_glob) if side == "A" else (self.b_dir, self.b_glob)
        root = folder / subdir
        if not root.is_dir():
            return {}, [], []
        listing = find_images(root, pattern)
        by_stem: dict[str, Path] = {}
        clashes = []
        for path in listing.images:
            stem = str(path.relative_to(root).with_suffix(""))
            if stem in by_stem:
                clashes.append(
                    f"{path.name} ({side} file {by_stem[stem].name} has the same name; "
                    f"narrow data.{side.lower()}_glob)"
                )
            by_stem[stem] = path
        return by_stem, clashes, listing.ignored

    def find(self, folder: Path) -> Found:
        a, clashes_a, ignored_a = self._side(folder, "A")
        b, clashes_b, ignored_b = self._side(folder, "B")
        pairs = [Pair(stem, a[stem], b[stem]) for stem in sorted(a.keys() & b.keys())]
        unmatched = [*clashes_a, *clashes_b]
        unmatched += [
            f"{a[s].relative_to(folder)} (no B file)" for s in sorted(a.keys() - b.keys())
        ]
        unmatched += [
            f"{b[s].relative_to(folder)} (no A file)" for s in sorted(b.keys() - a.keys())
        ]
        ignored = sorted(set(ignored_a) | set(ignored_b))
        return Found(pairs, unmatched, ignored)

    def pair_size(self, pair: Pair, sizes: dict[Path, Size]) -> Size | str:
        # B is resized to A's size by the transform if the two differ.
        return sizes[pair.a]

    def read(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        assert pair.b is not None  # every pair of this layout has two files
        return read_rgb(pair.a), read_rgb(pair.b)

    def describe(self, folder: Path) -> str:
        return (
            f"{folder} holds no A/B pairs: data.layout=separate looks for "
            f"{folder / self.a_dir}/{self.a_glob} and {folder / self.b_dir}/{self.b_glob} with "
            "matching names"
        )


@dataclass(frozen=True)
class SingleImages:
    """The images of one domain (CycleGAN's ``trainA/``...): each file is a "pair" of itself,
    so unpaired domains are found, scanned and checked as pairs are."""

    name: str = "single images"

    def find(self, folder: Path) -> Found:
        return files_as_pairs(folder)

    def pair_size(self, pair: Pair, sizes: dict[Path, Size]) -> Size | str:
        return sizes[pair.a]

    def read(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        image = read_rgb(pair.a)
        return image, image

    def describe(self, folder: Path) -> str:
        return f"{folder} contains no images; put the domain's images there"


PAIR_LAYOUTS: tuple[str, ...] = ("combined", "separate")


def make_layout(
    layout: str, a_dir: str = "A", b_dir: str = "B", a_glob: str = "*", b_glob: str = "*"
) -> PairLayout:
    """The layout named by ``data.layout``, with the ``separate`` layout's settings."""
    if layout == "combined":
        return CombinedLayout()
    if layout == "separate":
        return SeparateLayout(a_dir, b_dir, a_glob, b_glob)
    raise ConfigError(f"data.layout={layout!r} is not valid; use one of {', '.join(PAIR_LAYOUTS)}")
