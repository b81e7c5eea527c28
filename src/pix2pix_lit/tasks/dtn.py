"""The Domain Transfer Network (Taigman, Polyak, Wolf, "Unsupervised Cross-Domain Image
Generation", ICLR 2017): G = g ∘ f maps source images to the target domain, f a fixed encoder
pretrained on the source, g a decoder trained with a 3-way discriminator D."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from copy import deepcopy
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn
from torchmetrics import MeanMetric

from pix2pix_lit.checkpoint_file import CONFIG_KEY, read_checkpoint
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.losses.dtn import DTNObjective
from pix2pix_lit.networks.digits import DigitClassifier, DigitDecoder
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory

CLASSIFIER_TASK = "pix2pix_lit.tasks.DigitClassifierTask"
#: validation/test accuracies: name → what is classified by which network
ACCURACIES: dict[str, str] = {
    "accuracy": "C_T on G(source): the paper's metric (Table 1)",
    "accuracy_target": "C_T on the target images: its upper bound",
    "accuracy_grayscale_source": "C_T on the source images in grey: Table 1's 'original images'",
    "accuracy_f_source": "f's classifier on the source images",
}
_LUMA = (0.299, 0.587, 0.114)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """Images with ``channels`` channels: grey repeated to RGB, RGB to grey by luma."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


class FrozenNetwork(nn.Module):
    """A pretrained network that is never trained: no gradients to its parameters, and always
    in eval mode (``train()`` leaves it there), so its batch-norm statistics never change.
    Inputs are matched to ``in_channels`` first (None: passed as they are)."""

    def __init__(self, network: nn.Module, in_channels: int | None = None) -> None:
        super().__init__()
        self.network = network.requires_grad_(False).eval()
        self.in_channels = in_channels

    def train(self, mode: bool = True) -> FrozenNetwork:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_channels is not None:
            x = match_channels(x, self.in_channels)
        return self.network(x)


class DomainTransferGenerator(nn.Module):
    """G = g ∘ f: (N, C, S, S) → (N, C_T, S, S), inputs of either domain matched to f's
    ``in_channels`` (the target's grey digits are repeated to RGB for the source's f)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, in_channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(match_channels(x, self.in_channels)))


def load_classifier(path: str | None, key: str) -> DigitClassifier:
    """The digit classifier of a ``task=digit_classifier`` checkpoint, with its weights.

    Every problem is a one-line error naming ``key``: no path, a missing file, a file that is
    not a pix2pix_lit checkpoint, one of another task, weights that do not fit.
    """
    train = "python -m pix2pix_lit.train task=digit_classifier"
    if not path:
        raise ConfigError(f"{key} is not set; give the last.ckpt of a run of `{train}`")
    if not Path(path).is_file():
        raise ConfigError(f"{key}={path} does not exist; give the last.ckpt of a run of `{train}`")
    try:
        checkpoint = read_checkpoint(path)
    except DataError as err:
        raise ConfigError(f"{key}: {err}") from None
    task = checkpoint[CONFIG_KEY].get("task", {})
    if task.get("_target_") != CLASSIFIER_TASK:
        raise ConfigError(
            f"{key}={path} is a checkpoint of {task.get('_target_', 'an unknown task')}, not of a "
            f"digit classifier; give the last.ckpt of a run of `{train}`"
        )
    network = instantiate(OmegaConf.create(task["network"]))
    prefix = "network."
    weights = {
        k.removeprefix(prefix): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith(prefix)
    }
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"{key}={path}: its weights do not fit its network ({first})") from None
    return network


def fresh_copy(network: nn.Module) -> nn.Module:
    """A trainable copy of ``network`` with every layer initialised afresh."""
    copy = deepcopy(network).requires_grad_(True).train()
    for module in copy.modules():
        if module is not copy and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return copy


def _check_input(classifier: DigitClassifier, key: str, path: str, size: int, channels: int,
                 data_key: str) -> None:  # fmt: skip
    encoder = classifier.encoder
    if encoder.image_size != size:
        raise ConfigError(
            f"{key}={path} was trained on {encoder.image_size}x{encoder.image_size} images but "
            f"{data_key}.image_size={size}; use images of the classifier's size"
        )
    if encoder.in_channels != channels:
        raise ConfigError(
            f"{key}={path} takes {encoder.in_channels}-channel images but {data_key}.channels="
            f"{channels}; set {data_key}.channels={encoder.in_channels} or retrain it"
        )


class DTN(TranslationTask):
    """The Domain Transfer Network (section 4) on the project's two-optimizer machinery.

    Networks: f, the encoder of the source classifier at ``encoder_ckpt`` (frozen: no
    gradients, batch norm in eval mode throughout); g = ``decoder`` (``model=dtn_decoder``),
    which must take f's features; D = ``discriminator(num_outputs=)``
    (``discriminator=dtn_digits``, 3 outputs for the ternary D of the paper, 1 for
    ``loss.discriminator=binary``); the evaluator C_T, a classifier of the target at
    ``evaluator_ckpt`` (frozen). ``train_encoder=True`` is Table 1's "G does not contain f":
    G's encoder has f's architecture but starts from scratch and trains with g; L_CONST still
    uses the pretrained f.

    Per batch of source s and target t: one step of D on L_D, then one of g on L_G, both on
    the fakes G(s), G(t) computed once. Validation (and test) log the accuracies of
    :data:`ACCURACIES` over the test splits; ``val/accuracy`` selects checkpoints.
    """

    scores_image_pairs = False

    def __init__(
        self,
        encoder_ckpt: str | None,
        evaluator_ckpt: str | None,
        decoder: DigitDecoder,
        discriminator: Callable[..., nn.Module],
        objective: DTNObjective,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        image_size: int = 32,
        source_channels: int = 3,
        target_channels: int = 1,
        train_encoder: bool = False,
        scheduler: SchedulerFactory | None = None,
        inference: str = "standard",
        validation_seed: int = 0,
        nonfinite_patience: int = 10,
        clip_grad_norm: float = 0.0,
    ):
        super().__init__(
            optimizer_g, optimizer_d, scheduler, inference, validation_seed, nonfinite_patience,
            clip_grad_norm,
        )  # fmt: skip
        if not isinstance(objective, DTNObjective):
            raise ConfigError(
                f"task=dtn trains a DTNObjective (loss=dtn), not a {type(objective).__name__}"
            )
        source = load_classifier(encoder_ckpt, "task.encoder_ckpt")
        _check_input(source, "task.encoder_ckpt", encoder_ckpt, image_size, source_channels,
                     "data.source")  # fmt: skip
        evaluator = load_classifier(evaluator_ckpt, "task.evaluator_ckpt")
        _check_input(evaluator, "task.evaluator_ckpt", evaluator_ckpt, image_size,
                     target_channels, "data.target")  # fmt: skip
        self.f = FrozenNetwork(source.encoder, source_channels)
        self.source_head = FrozenNetwork(source.head)
        self.evaluator = FrozenNetwork(evaluator, target_channels)
        if decoder.in_channels != source.encoder.features:
            raise ConfigError(
                f"model.in_channels={decoder.in_channels} but f of task.encoder_ckpt="
                f"{encoder_ckpt} encodes to {source.encoder.features} features; set "
                f"model.in_channels={source.encoder.features}"
            )
        for key, value, data_value in (("out_channels", decoder.out_channels, target_channels),
                                       ("image_size", decoder.image_size, image_size)):  # fmt: skip
            if value != data_value:
                raise ConfigError(
                    f"model.{key}={value} but the target images have {data_value}; leave "
                    f"model.{key} to follow data.target"
                )
        encoder = fresh_copy(source.encoder) if train_encoder else self.f
        self.train_encoder = train_encoder
        self.generator = DomainTransferGenerator(encoder, decoder, source_channels)
        self.discriminator = discriminator(num_outputs=objective.num_outputs)
        self.objective = objective
        self.accuracies = nn.ModuleDict(
            {
                stage: nn.ModuleDict({k: MeanMetric() for k in ACCURACIES})
                for stage in ("val", "test")
            }
        )

    # -- the networks ------------------------------------------------------------------
    def trained_generator_modules(self) -> tuple[nn.Module, ...]:
        """g, and G's encoder when it trains (``train_encoder``)."""
        if self.train_encoder:
            return (self.generator.encoder, self.generator.decoder)
        return (self.generator.decoder,)

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain.from_iterable(
            m.parameters() for m in self.trained_generator_modules()
        )

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def translation_network(self) -> nn.Module:
        return self.generator

    # -- training ----------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        source, target = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()
        snapshot = self.guard.snapshot(*self.trained_generator_modules(), self.discriminator)
        with torch.no_grad():
            f_source = self.f(source)
        # with the frozen f as G's encoder, G(s) = g(f(s)) reuses f(s)
        fake_source = (
            self.generator(source) if self.train_encoder else self.generator.decoder(f_source)
        )
        fake_target = self.generator(target)
        discriminator_loss = partial(
            self.objective.discriminator_loss, self.discriminator, fake_source, fake_target, target
        )
        generator_loss = partial(
            self.objective.generator_loss,
            *(self.discriminator, self.f, f_source, fake_source, target, fake_target),
        )
        # D first, then g, on the same fakes (yunjey/domain-transfer-network's order)
        updates = [
            self.update("D", opt_d, discriminator_loss),
            self.update("G", opt_g, generator_loss),
        ]
        self.finish_batch(updates, snapshot, batch_size=len(source))

    # -- validation, test and grids ------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], prefix: str) -> None:
        source, target = batch["A"], batch["B"]
        source_labels, target_labels = batch["A_label"], batch["B_label"]
        counted_source = batch["A_counted"].float()
        counted_target = batch["B_counted"].float()
        with torch.no_grad():
            predictions = {
                "accuracy": (self.evaluator(self.generate(source)), source_labels, counted_source),
                "accuracy_target": (self.evaluator(target), target_labels, counted_target),
                "accuracy_grayscale_source": (
                    self.evaluator(source),  # matched to C_T's grey input by luma
                    source_labels,
                    counted_source,
                ),
                "accuracy_f_source": (
                    self.source_head(self.f(source)),
                    source_labels,
                    counted_source,
                ),
            }
        metrics = self.accuracies[prefix]
        for name, (logits, labels, counted) in predictions.items():
            correct = (logits.argmax(1) == labels).float()
            metrics[name].update(correct, counted)
            self.log(f"{prefix}/{name}", metrics[name], on_step=False, on_epoch=True,
                     batch_size=len(labels))  # fmt: skip

    def grid_columns(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {
            "source": batch["A"],
            "G(source)": self.generate(batch["A"]),
            "target": batch["B"],
            "G(target)": self.generate(batch["B"]),
        }
