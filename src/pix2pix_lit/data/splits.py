"""Which pairs make up each split of a paired dataset, every file checked once at start-up.

The splits are folders under the root (``train/``, ``val/``, ``test/``; any may be renamed)
or, for a dataset that comes as one folder, drawn from it by ``test_fraction`` with a seed or
named by a ``test_list`` file. Without a validation split, validation falls back to another
split or to training pairs held out with a seed. A split's files are found by its
:mod:`~pix2pix_lit.data.layouts` layout and read (or their headers) by the start-up scan; every
problem of a split is reported in one :class:`DataError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from pix2pix_lit.data.layouts import UNMATCHED_POLICIES, Found, Pair, PairLayout
from pix2pix_lit.data.scan import scan_images
from pix2pix_lit.data.transforms import Preprocess, Size
from pix2pix_lit.errors import ConfigError, DataError

_MAX_LISTED_FILES = 10


def listed(items: Sequence[str], limit: int = _MAX_LISTED_FILES) -> str:
    """The first ``limit`` of ``items``, comma-separated, and how many more there are."""
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


class PairSplits:
    """The checked pairs of each split of the dataset at ``root`` (arguments: those of
    :class:`~pix2pix_lit.data.paired.PairedImageDataModule` of the same names;
    ``preprocess`` rejects images smaller than its crop); checks its settings.

    ``pair_sizes`` holds the (width, height) of each checked pair's A image, by the pair's
    first file; the drawn partition of a one-folder dataset is kept once made.
    """

    def __init__(
        self,
        root: Path,
        layout: PairLayout,
        preprocess: Preprocess,
        *,
        train_split: str,
        val_split: str,
        test_split: str,
        val_fallback: str | int,
        test_fraction: float | None,
        test_list: Path | None,
        unmatched: str,
        seed: int,
        verify_images: bool,
        scan_cache: str | Path | None,
        scan_workers: int | None,
        url: str | None,
        download: bool,
    ) -> None:
        # bool is an int subclass, but "val_fallback: true" is surely a typo, not "hold out 1".
        if (
            isinstance(val_fallback, bool)
            or not isinstance(val_fallback, (str, int))
            or (isinstance(val_fallback, int) and val_fallback < 1)
        ):
            raise ConfigError(
                f"data.val_fallback={val_fallback!r} is not valid; use a split folder name "
                "(e.g. 'test') or a positive int N to hold N training images out"
            )
        if unmatched not in UNMATCHED_POLICIES:
            raise ConfigError(
                f"data.unmatched={unmatched!r} is not valid; use one of "
                f"{', '.join(UNMATCHED_POLICIES)}"
            )
        if test_fraction is not None and not (
            isinstance(test_fraction, float) and 0 < test_fraction < 1
        ):
            raise ConfigError(
                f"data.test_fraction={test_fraction!r} must be a number between 0 and 1 (e.g. 0.1)"
            )
        if test_fraction is not None and test_list is not None:
            raise ConfigError(
                "data.test_fraction and data.test_list both set; choose one way to draw the "
                "test split (set the other to null)"
            )
        self.root = root
        self.layout = layout
        self.preprocess = preprocess
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.val_fallback = val_fallback
        self.test_fraction = test_fraction
        self.test_list = test_list
        self.unmatched = unmatched
        self.seed = seed
        self.verify_images = verify_images
        self.scan_cache = scan_cache
        self.scan_workers = scan_workers
        self.url = url
        self.download = download
        self.pair_sizes: dict[Path, Size] = {}
        self._partition: dict[str, list[Pair]] | None = None

    def missing_train_error(self) -> DataError:
        """What to do about a missing training split (point at it, or download it)."""
        what = (
            f"data.root={self.root} does not exist"
            if not self.root.exists()
            else f"data.root={self.root} exists"
        )
        what += f" (no '{self.train_split}/' folder)"
        layout = (
            f"point data.root at a folder with {self.train_split}/ "
            f"(and {self.val_split}/, {self.test_split}/), or set data.test_fraction to draw "
            "the splits from one folder"
        )
        if not self.url:
            return DataError(f"{what} and no data.url to download it from; {layout}")
        if not self.download:
            return DataError(
                f"{what} and data.download=false; set data.download=true to fetch "
                f"data.url={self.url}, or {layout}"
            )
        return DataError(f"{what}; call prepare_data() (the Trainer does) to fetch data.url")

    @property
    def one_folder(self) -> bool:
        """Whether the splits are drawn from ``root`` itself rather than split folders."""
        return self.test_fraction is not None or self.test_list is not None

    def in_place(self) -> bool:
        """Whether the dataset is there: its training split folder, or ``root`` itself."""
        return self.root.is_dir() if self.one_folder else (self.root / self.train_split).is_dir()

    def checked_pairs(
        self, found: Found, where: Path, layout: PairLayout | None = None
    ) -> list[Pair]:
        """The pairs of ``found`` (by ``layout``, default the dataset's), every file read (or
        its header) and checked; all the problems of the split in one :class:`DataError`."""
        layout = layout or self.layout
        if not found.pairs and not found.unmatched:
            ignored = f" ({len(found.ignored)} hidden or non-image files ignored)"
            raise DataError(layout.describe(where) + (ignored if found.ignored else ""))
        if not found.pairs:
            raise DataError(
                f"no A file in {where} matches a B file ({len(found.unmatched)} unmatched: "
                f"{listed(found.unmatched)}); data.layout={layout.name} pairs files by name"
            )
        if found.unmatched and self.unmatched == "error":
            raise DataError(
                f"{len(found.unmatched)} file(s) in {where} have no partner: "
                f"{listed(found.unmatched)}; add the missing files or set data.unmatched=skip"
            )
        if found.unmatched:
            rank_zero_warn(
                f"data.unmatched=skip: left out {len(found.unmatched)} file(s) of {where} "
                f"without a partner: {listed(found.unmatched)}"
            )
        files = [path for pair in found.pairs for path in pair.files]
        scan = scan_images(
            files,
            decode=self.verify_images,
            cache_dir=self.scan_cache,
            workers=self.scan_workers,
            desc=f"scanning {where.name}",
        )
        problems = [f"{path.relative_to(where)} (unreadable: {why})" for path, why in
                    scan.unreadable.items()]  # fmt: skip
        pairs = []
        for pair in found.pairs:
            if any(path in scan.unreadable for path in pair.files):
                continue
            size = layout.pair_size(pair, scan.sizes)
            if isinstance(size, str):
                problems.append(f"{pair.a.relative_to(where)} ({size})")
            elif self.preprocess.too_small(size):
                problems.append(
                    f"{pair.a.relative_to(where)} ({size[0]}x{size[1]}, smaller than "
                    f"data.crop_size={self.preprocess.crop_size})"
                )
            else:
                self.pair_sizes[pair.a] = size
                pairs.append(pair)
        if problems:
            raise DataError(
                f"{len(problems)} file(s) in {where} cannot be used "
                f"(data.layout={layout.name}): {listed(problems)}"
            )
        if found.ignored:
            rank_zero_info(
                f"{where}: ignored {len(found.ignored)} hidden or non-image file(s): "
                f"{listed([str(p.relative_to(where)) for p in found.ignored], 3)}"
            )
        return pairs

    def _partition_of_root(self) -> dict[str, list[Pair]]:
        """The training and test pairs drawn from ``root`` by ``test_fraction``/``test_list``."""
        if self._partition is not None:
            return self._partition
        if not self.root.is_dir():
            raise self.missing_train_error()
        pairs = self.checked_pairs(self.layout.find(self.root), self.root)
        if self.test_list is not None:
            is_test = self._listed_for_test(pairs)
        else:
            count = min(max(1, round(self.test_fraction * len(pairs))), len(pairs) - 1)
            if count < 1:
                raise DataError(
                    f"data.root={self.root} holds {len(pairs)} pair(s); data.test_fraction "
                    "needs at least 2 to draw a test split"
                )
            order = np.random.default_rng(self.seed).permutation(len(pairs))
            chosen = set(order[:count].tolist())
            is_test = [i in chosen for i in range(len(pairs))]
        self._partition = {
            self.train_split: [p for p, test in zip(pairs, is_test, strict=True) if not test],
            self.test_split: [p for p, test in zip(pairs, is_test, strict=True) if test],
        }
        return self._partition

    def _listed_for_test(self, pairs: list[Pair]) -> list[bool]:
        try:
            lines = self.test_list.read_text().splitlines()
        except OSError as err:
            raise DataError(f"cannot read data.test_list={self.test_list}: {err}") from err
        names = {str(Path(line.strip()).with_suffix("")) for line in lines if line.strip()}
        keys = [str(Path(pair.key).with_suffix("")) for pair in pairs]
        by_name = {Path(key).name for key in keys}
        unknown = sorted(n for n in names if n not in keys and Path(n).name not in by_name)
        if unknown:
            raise DataError(
                f"{len(unknown)} name(s) in data.test_list={self.test_list} match no pair of "
                f"data.root={self.root}: {listed(unknown)}"
            )
        is_test = [key in names or Path(key).name in names for key in keys]
        if all(is_test):
            raise DataError(
                f"data.test_list={self.test_list} names every pair of data.root={self.root}; "
                "leave some for training"
            )
        return is_test

    def pairs(self, split: str, key: str) -> list[Pair]:
        """The checked pairs of ``split`` (``key`` names the setting that chose it)."""
        if self.one_folder:
            partition = self._partition_of_root()
            if split not in partition:
                raise DataError(
                    f"{key}={split!r}: with data.test_fraction or data.test_list the splits "
                    f"are '{self.train_split}' and '{self.test_split}'"
                )
            return partition[split]
        folder = self.root / split
        if not folder.is_dir() and (split == self.train_split or not self.root.is_dir()):
            raise self.missing_train_error()
        if not folder.is_dir():
            found = sorted(f"{child.name}/" for child in self.root.iterdir() if child.is_dir())
            raise DataError(
                f"data.root={self.root} has no '{split}/' folder (found: {', '.join(found)}); "
                f"set {key} to another split folder, or data.val_fallback=N (e.g. 20) to hold "
                f"N of the '{self.train_split}/' images out for validation"
            )
        return self.checked_pairs(self.layout.find(folder), folder)

    def has_split(self, split: str) -> bool:
        """Whether ``split`` exists: a split folder, or a split drawn from the one folder."""
        if self.one_folder:
            return split in (self.train_split, self.test_split)
        return (self.root / split).is_dir()

    def train_and_val(self) -> tuple[list[Pair], list[Pair]]:
        """The training and validation pairs (the fallback, or held-out pairs, without a
        validation split)."""
        train = self.pairs(self.train_split, "data.train_split")
        if not self.one_folder and self.has_split(self.val_split):
            return train, self.pairs(self.val_split, "data.val_split")
        fallback = self.val_fallback
        if isinstance(fallback, str):
            val = self.pairs(fallback, "data.val_fallback")
            choice = f"validating on '{fallback}/' instead"
        else:
            if fallback >= len(train):
                raise ConfigError(
                    f"data.val_fallback={fallback} would hold out all {len(train)} training "
                    f"pairs of data.root={self.root}; use fewer than {len(train)}"
                )
            order = np.random.default_rng(self.seed).permutation(len(train))
            held_out = set(order[:fallback].tolist())
            val = [pair for i, pair in enumerate(train) if i in held_out]
            train = [pair for i, pair in enumerate(train) if i not in held_out]
            choice = (
                f"holding out {fallback} of its '{self.train_split}' pairs for validation "
                f"(data.seed={self.seed})"
            )
        rank_zero_warn(
            f"data.root={self.root} has no '{self.val_split}/' folder; {choice} "
            f"(data.val_fallback={fallback!r}; an int N holds N training pairs out)"
        )
        return train, val
