"""The LightningDataModule of aligned A/B image pairs: settings, fetching, loaders.

Where the pairs are stored is a :mod:`~pix2pix_lit.data.layouts` layout (``combined`` A|B
files, the pix2pix layout; ``separate`` A/ and B/ folders); which pairs make up each split
is :class:`~pix2pix_lit.data.splits.PairSplits`'s; a sample is a
:class:`~pix2pix_lit.data.paired_dataset.PairedImageDataset`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, default_collate

from pix2pix_lit.data.augment import PairAugment
from pix2pix_lit.data.download import fetch_dataset, preparing
from pix2pix_lit.data.io import check_channels
from pix2pix_lit.data.layouts import Pair, make_layout
from pix2pix_lit.data.loader_workers import init_loader_worker
from pix2pix_lit.data.paired_dataset import PairedImageDataset, check_direction
from pix2pix_lit.data.sampling import ResumableRandomSampler, SizeBatches
from pix2pix_lit.data.splits import PairSplits, listed
from pix2pix_lit.data.transforms import FIXED_SIZE_MODES, PairTransform, Preprocess, Size
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.shapes import size_rule


class PairedImageDataModule(LightningDataModule):
    """Train/val/test loaders over a dataset of aligned pairs, in any :data:`PAIR_LAYOUTS`.

    Defaults follow the paper's facades recipe (resize to 286, random 256 crop, random flip,
    batch size 1). Batches are ``{"A": [N,C_in,H,W], "B": [N,C_out,H,W], "A_path": list[str]}``
    with values in [-1, 1]; ``A`` is the input and ``B`` the target for either ``direction``.

    Args:
        root: the dataset folder (holding the split folders); relative to the current directory.
        layout: ``"combined"`` (A|B files) or ``"separate"`` (A and B folders).
        preprocess: the reference's mode (:data:`~pix2pix_lit.data.transforms.PREPROCESS_MODES`).
        direction: ``"AtoB"`` or ``"BtoA"`` (B, the right half, is the input).
        load_size: side (or width, for ``scale_width*``) images are resized to before cropping.
        crop_size: side of the training crops and of the resized val/test images.
        flip: random horizontal flips in training.
        batch_size: training batch size.
        val_batch_size: val/test/predict batch size (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory (only when CUDA is available).
        persistent_workers: keep workers alive between epochs (only when ``num_workers > 0``).
        train_split, val_split, test_split: split folder names under ``root``.
        val_fallback: when there is no ``val_split``, a split name to validate on instead, or
            an int N to hold N training images out (chosen by ``seed``).
        test_fraction: the dataset is ``root`` itself (no split folders); this fraction of its
            pairs, drawn with ``seed``, is the test split and the rest the training split.
        test_list: as ``test_fraction``, the test split being the pairs named in this text
            file (one per line: file name, with or without extension, or relative path).
        a_dir, b_dir, a_glob, b_glob: the ``separate`` layout's folders (relative to a split
            folder, ``.`` for the folder itself) and file patterns (e.g. ``*.jpg``).
        unmatched: ``"error"`` lists files without a partner in one error; ``"skip"`` leaves
            them out with a warning that counts them.
        in_channels, out_channels: channels of the input and target images (1 or 3).
        size_multiple: sides of the ``none``/``scale_width`` images are resized to a multiple
            of it; ``None``: the generator's (:func:`~pix2pix_lit.networks.shapes.size_rule`)
            when a Trainer runs the module, otherwise 1.
        url: http(s):// or file:// archive to fetch when ``root`` has no ``train_split`` folder.
        sha256: the archive's checksum, verified when given.
        expected_counts: images per split the archive must contain, checked after extraction.
        download: allow :meth:`prepare_data` to fetch ``url``.
        seed: seed of the held-out validation and fraction test splits.
        verify_images: decode every image when scanning the splits, to report truncated or
            corrupt files (with all other problems) before training starts.
        scan_cache: folder keeping scan results between starts (keyed by file size and
            modification time); ``None``: scan every time.
        scan_workers: threads reading files in the scan (default: two per CPU core).
        augment: albumentations transforms run on A and B with one draw after the
            preprocessing, in training only (:mod:`pix2pix_lit.data.augment`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        layout: str = "combined",
        preprocess: str = "resize_and_crop",
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        batch_size: int = 1,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        val_fallback: str | int = "test",
        test_fraction: float | None = None,
        test_list: str | Path | None = None,
        a_dir: str = "A",
        b_dir: str = "B",
        a_glob: str = "*",
        b_glob: str = "*",
        unmatched: str = "error",
        in_channels: int = 3,
        out_channels: int = 3,
        size_multiple: int | None = None,
        url: str | None = None,
        sha256: str | None = None,
        expected_counts: Mapping[str, int] | None = None,
        download: bool = True,
        seed: int = 0,
        verify_images: bool = True,
        scan_cache: str | Path | None = None,
        scan_workers: int | None = None,
        augment: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        check_direction(direction)
        self.pair_layout = make_layout(layout, a_dir, b_dir, a_glob, b_glob)
        # Checks the mode and sizes now; the size multiple is only known in setup().
        sizes = Preprocess(preprocess, load_size, crop_size, flip)
        self._check_settings(locals())
        self.root = Path(root).expanduser().resolve()
        self.test_list = None if test_list is None else Path(test_list).expanduser()
        # checks the split settings
        self.splits = PairSplits(
            self.root,
            self.pair_layout,
            sizes,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            val_fallback=val_fallback,
            test_fraction=test_fraction,
            test_list=self.test_list,
            unmatched=unmatched,
            seed=seed,
            verify_images=verify_images,
            scan_cache=scan_cache,
            scan_workers=scan_workers,
            url=url,
            download=download,
        )
        self.preprocess = preprocess
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.batch_size = batch_size
        self.val_batch_size = batch_size if val_batch_size is None else val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.val_fallback = val_fallback
        self.test_fraction = test_fraction
        self.unmatched = unmatched
        self.channels = (in_channels, out_channels)
        self.size_multiple = size_multiple
        self.url = url
        self.sha256 = sha256
        self.expected_counts = None if expected_counts is None else dict(expected_counts)
        self.download = download
        self.seed = seed
        self.verify_images = verify_images
        self.scan_cache = scan_cache
        self.scan_workers = scan_workers
        self.augment = PairAugment(augment) if augment else None
        # Drawn from the global generator once, so seed_everything fixes every epoch's order.
        self.shuffle_seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self._sampler: ResumableRandomSampler | None = None
        self._sampler_state: dict[str, Any] | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        for key in ("batch_size", "val_batch_size"):
            value = settings[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):  # fmt: skip
                raise ConfigError(f"data.{key}={value!r} must be a positive integer")
        if settings["num_workers"] < 0:
            raise ConfigError(f"data.num_workers={settings['num_workers']} must be 0 or more")
        check_channels(settings["in_channels"], "data.in_channels")
        check_channels(settings["out_channels"], "data.out_channels")
        multiple = settings["size_multiple"]
        if multiple is not None and (not isinstance(multiple, int) or multiple < 1):
            raise ConfigError(f"data.size_multiple={multiple!r} must be a positive integer or null")

    # -- fetching --------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download and extract ``url`` into ``root`` when ``root`` has no train split."""
        if self.splits.in_place():
            return
        if not (self.url and self.download):
            raise self.splits.missing_train_error()
        self._create_once(self.splits.in_place, lambda: self._fetch(self.train_split))

    def _create_once(self, is_in_place: Callable[[], bool], create: Callable[[], Any]) -> None:
        """Create the dataset at ``root`` with ``create`` while holding the lock on it,
        unless another job created it while this one waited for the lock."""
        with preparing(self.root):
            if not is_in_place():
                create()

    def _fetch(self, archive_train_split: str) -> None:
        """Fetch ``url`` into ``root``; ``archive_train_split`` names the folder that marks
        the dataset inside the archive."""
        fetch_dataset(
            self.url,
            self.root,
            sha256=self.sha256,
            expected_counts=self.expected_counts,
            train_split=archive_train_split,
        )

    # -- transforms and sizes --------------------------------------------------------
    def _multiple(self) -> int:
        """``size_multiple``, else the generator's when a Trainer runs this module."""
        if self.size_multiple is not None:
            return self.size_multiple
        module = self.trainer.lightning_module if self.trainer is not None else None
        if module is None or not hasattr(module, "translation_network"):
            return 1
        rule = size_rule(module.translation_network())
        if self.preprocess in FIXED_SIZE_MODES and self.crop_size % rule.multiple:
            raise ConfigError(
                f"data.crop_size={self.crop_size} is not a multiple of {rule.multiple}, which "
                f"the generator ({type(module.translation_network()).__name__}) needs; use "
                f"e.g. {max(1, round(self.crop_size / rule.multiple)) * rule.multiple}"
            )
        return rule.multiple

    def _transform(self, train: bool) -> PairTransform:
        flip = self.flip and train
        preprocess = Preprocess(
            self.preprocess, self.load_size, self.crop_size, flip, self._multiple()
        )
        return PairTransform(preprocess, train, self.augment)

    def _dataset(self, pairs: list[Pair], train: bool) -> PairedImageDataset:
        dataset = PairedImageDataset(
            pairs, self._transform(train), self.direction, self.pair_layout, self.channels
        )
        if train:
            self._check_batchable(dataset)
        return dataset

    def has_split(self, split: str) -> bool:
        """Whether ``split`` exists: a split folder, or a split drawn from the one folder."""
        return self.splits.has_split(split)

    def sample_sizes(self, dataset: PairedImageDataset, train: bool) -> list[Size]:
        """The (width, height) of each sample of ``dataset`` after preprocessing."""
        preprocess = dataset.transform.preprocess
        return [
            preprocess.output_size(self.splits.pair_sizes[pair.a], train) for pair in dataset.pairs
        ]

    def _check_batchable(self, train_set: PairedImageDataset) -> None:
        # Evaluation batches are bucketed by size (SizeBatches); training batches are not,
        # as the resumable sampler counts its position in samples of one shuffled order.
        if self.batch_size == 1 or self.preprocess in FIXED_SIZE_MODES:
            return
        sizes = Counter(self.sample_sizes(train_set, train=True))
        if len(sizes) > 1:
            common = [f"{w}x{h} ({n})" for (w, h), n in sizes.most_common()]
            raise ConfigError(
                f"data.batch_size={self.batch_size} with data.preprocess={self.preprocess}: the samples "
                f"come in {len(sizes)} sizes ({listed(common, 4)}) and a batch holds one size; "
                "use batch size 1, or a mode with a fixed size (resize_and_crop, "
                "scale_width_and_crop, crop)"
            )

    # -- LightningDataModule ---------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Scan the splits needed for ``stage`` (all of them when ``None``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = self.splits.train_and_val()
            self.train_set = self._dataset(train, True)
            self.val_set = self._dataset(val, False)
            rank_zero_info(f"data: {len(train)} training and {len(val)} validation pairs")
        if stage in (None, "test", "predict") and self.test_set is None:
            test = self.splits.pairs(self.test_split, "data.test_split")
            self.test_set = self._dataset(test, False)
            rank_zero_info(f"data: {len(test)} test pairs")

    def _loader(
        self,
        dataset: Dataset | None,
        batch_size: int,
        sampler: ResumableRandomSampler | None = None,
        batch_sampler: SizeBatches | None = None,
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders")
        batching: dict[str, Any] = (
            {"batch_sampler": batch_sampler}
            if batch_sampler is not None
            else {"batch_size": batch_size, "sampler": sampler}
        )
        return DataLoader(
            dataset,
            **batching,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            # Worker seeds from a private generator: creating the loader's iterator (again,
            # after a resume) must not consume the global generators.
            generator=torch.Generator().manual_seed(self.shuffle_seed),
            worker_init_fn=partial(
                init_loader_worker, rank=self.trainer.global_rank if self.trainer else 0
            ),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches (order and crops resumable mid-epoch)."""
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders")
        # Under data parallelism each process draws its own share of the epoch's order (the
        # ddp trainer configs set use_distributed_sampler=false, so Lightning leaves it alone).
        trainer = self.trainer
        self._sampler = ResumableRandomSampler(
            len(self.train_set),
            self.shuffle_seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        if self._sampler_state is not None:
            self._sampler.load_state_dict(self._sampler_state)
        return self._loader(self.train_set, self.batch_size, self._sampler)

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        """Batches of ``val_batch_size``, bucketed by size when samples keep their own sizes."""
        if (
            not isinstance(dataset, PairedImageDataset)
            or self.val_batch_size == 1
            or self.preprocess in FIXED_SIZE_MODES
        ):
            return self._loader(dataset, self.val_batch_size)
        batches = SizeBatches(self.sample_sizes(dataset, train=False), self.val_batch_size)
        return self._loader(dataset, self.val_batch_size, batch_sampler=batches)

    def val_dataloader(self) -> DataLoader:
        """Validation batches (from the fallback when there is no val split)."""
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._eval_loader(self.test_set)

    def state_dict(self) -> dict[str, Any]:
        """Where the training sampler stands, saved in checkpoints by Lightning."""
        if self._sampler is None or self.trainer is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"sampler": self._sampler.state_dict(consumed=done * self.batch_size)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._sampler_state = state_dict.get("sampler")
        if self._sampler is not None and self._sampler_state is not None:
            self._sampler.load_state_dict(self._sampler_state)

    def predict_dataloader(self) -> DataLoader:
        """The test batches, for ``Trainer.predict``."""
        return self.test_dataloader()

    def sample_val_batch(self, n: int) -> dict[str, Any]:
        """The first ``n`` validation pairs (fewer if the split is smaller), collated.

        Always the same pairs, for image grids that can be compared across epochs; with
        samples of several sizes, the first ``n`` of the first sample's size.
        """
        if self.val_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup('fit') must run before sampling")
        if n < 1:
            raise ValueError(f"n={n} must be a positive number of validation pairs")
        samples = []
        for index in range(len(self.val_set)):
            sample = self.val_set[index]
            if samples and sample["A"].shape != samples[0]["A"].shape:
                continue
            samples.append(sample)
            if len(samples) == n:
                break
        return default_collate(samples)
