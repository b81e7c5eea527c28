"""CycleGAN (Zhu et al. 2017): generators G: A → B and F: B → A, discriminators D_A and D_B."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from contextlib import ExitStack
from functools import partial
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.data.paired_dataset import DIRECTIONS
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.inference import inference_protocol
from pix2pix_lit.losses import CycleGANObjective
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.tasks.network_checks import conv_channels
from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory


def heatmap_image(heatmap: Tensor, size: tuple[int, int]) -> Tensor:
    """An attention map (N, 1, h, w) as an image column: bilinearly resized to ``size`` and
    min-max scaled to [-1, 1] per image, so the most attended region is white."""
    heatmap = F.interpolate(heatmap.float(), size=size, mode="bilinear", align_corners=False)
    low = heatmap.amin(dim=(1, 2, 3), keepdim=True)
    high = heatmap.amax(dim=(1, 2, 3), keepdim=True)
    return 2 * (heatmap - low) / (high - low).clamp_min(1e-8) - 1


class CycleGAN(TranslationTask):
    """Unpaired translation with two generators and two unconditional discriminators.

    ``generator_ab`` is G: A → B, ``generator_ba`` F: B → A; ``discriminator_a`` judges
    images of domain A (real a against F(b)), ``discriminator_b`` images of B. Any networks of
    the zoo fit; ``objective`` (``loss=cyclegan``) holds the losses and history pools.

    Per batch, as in the authors' code: one Adam step for G and F together on the full
    objective, then one for D_A and D_B together on fakes from the pools
    (:attr:`update_order`). U-GAT-IT generators are supported (their ρ is clipped to [0, 1]
    after each generator step: :func:`~pix2pix_lit.networks.lin.clip_rho_after_steps`).

    ``direction`` picks the generator that :meth:`translate` runs (``AtoB``: G, ``BtoA``: F)
    and hence what validation measures: G(a) against b, or F(b) against a. The image grid
    shows A | G(A) | F(G(A)) | B | F(B) | G(F(B)), with the generators' attention maps after
    G(A) and F(B) when they have CAM attention.
    """

    #: the networks updated in a batch, in order: "G" (G and F) and "D" (D_A and D_B)
    update_order: tuple[str, ...] = ("G", "D")
    #: the objective this task trains
    objective_type: type[CycleGANObjective] = CycleGANObjective

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        objective: CycleGANObjective,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        inference: str = "paper",
        validation_seed: int = 0,
        nonfinite_patience: int = 10,
        direction: str = "AtoB",
        clip_grad_norm: float = 0.0,
    ):
        super().__init__(
            optimizer_g, optimizer_d, scheduler, inference, validation_seed, nonfinite_patience,
            clip_grad_norm,
        )  # fmt: skip
        if not isinstance(objective, self.objective_type):
            raise ConfigError(
                f"{type(self).__name__} trains a {self.objective_type.__name__}, not a "
                f"{type(objective).__name__}; select its loss (loss=cyclegan or loss=ugatit)"
            )
        objective.check_generators(generator_ab, generator_ba)
        check_channels(generator_ab, generator_ba, discriminator_a, discriminator_b)
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.objective = objective
        self.direction = direction
        self._restored_pools: dict[str, list[Tensor]] | None = None

    @property
    def direction(self) -> str:
        """``AtoB`` (translate with G) or ``BtoA`` (with F); may be changed after loading."""
        return self._direction

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in DIRECTIONS:
            raise ConfigError(f"task.direction={value!r} is not one of {', '.join(DIRECTIONS)}")
        self._direction = value

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.generator_ab.parameters(), self.generator_ba.parameters())

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())

    def translation_network(self) -> nn.Module:
        return self.generator_ab if self.direction == "AtoB" else self.generator_ba

    # -- training --------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        generators = (self.generator_ab, self.generator_ba)
        discriminators = (self.discriminator_a, self.discriminator_b)
        snapshot = self.guard.snapshot(*generators, *discriminators)
        # The generators run once per batch, before both updates (the authors' code: the
        # discriminators see the fakes of before the generator step).
        outputs = self.objective.run_generators(*generators, batch["A"], batch["B"])
        opt_g, opt_d = self.optimizers()
        losses = {
            "G": (opt_g, partial(self.objective.generator_loss, *discriminators, outputs)),
            "D": (opt_d, partial(self.objective.discriminator_loss, *discriminators, outputs)),
        }
        updates = [self.update(name, *losses[name]) for name in self.update_order]
        self.finish_batch(updates, snapshot, batch_size=len(batch["A"]))

    # -- validation, test and grids ----------------------------------------------------
    def orient_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.direction == "AtoB":
            return batch
        return {**batch, "A": batch["B"], "B": batch["A"]}

    def grid_columns(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        with ExitStack() as stack:
            for generator in (self.generator_ab, self.generator_ba):
                stack.enter_context(inference_protocol(generator, self.inference))
            return {
                **self._round_trip(
                    batch["A"], "A", ("G", self.generator_ab), ("F", self.generator_ba)
                ),
                **self._round_trip(
                    batch["B"], "B", ("F", self.generator_ba), ("G", self.generator_ab)
                ),
            }

    @staticmethod
    def _round_trip(
        real: Tensor, domain: str, there: tuple[str, nn.Module], back: tuple[str, nn.Module]
    ) -> dict[str, Tensor]:
        """Columns x | T(x) [| CAM of T on x] | S(T(x)) for images x of ``domain``."""
        (t, generator), (s, inverse) = there, back
        if hasattr(generator, "forward_with_cam"):
            fake, _, heatmap = generator.forward_with_cam(real)
        else:
            fake, heatmap = generator(real), None
        columns = {domain: real, f"{t}({domain})": fake}
        if heatmap is not None:
            columns[f"CAM {t}({domain})"] = heatmap_image(heatmap, real.shape[-2:])
        columns[f"{s}({t}({domain}))"] = inverse(fake)
        return columns

    # -- checkpoints -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # The pools are training state: a resumed run shows D the history it would have seen.
        checkpoint["image_pools"] = self.objective.pool_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._restored_pools = checkpoint.get("image_pools")

    def on_train_start(self) -> None:
        super().on_train_start()
        # Lightning restores checkpoints before moving the module to its device; the pools,
        # plain lists, are refilled here, where the device is final.
        if self._restored_pools is not None:
            self.objective.load_pool_state(self._restored_pools, self.device)
            self._restored_pools = None


def check_channels(
    generator_ab: nn.Module,
    generator_ba: nn.Module,
    discriminator_a: nn.Module,
    discriminator_b: nn.Module,
) -> None:
    """Raise a :class:`ConfigError` unless F inverts G's channels and each D fits its domain."""
    channels_a, channels_b = conv_channels(generator_ab)
    inverse_in, inverse_out = conv_channels(generator_ba)
    if (inverse_in, inverse_out) != (channels_b, channels_a):
        raise ConfigError(
            f"G: A -> B maps {channels_a} -> {channels_b} channels and F: B -> A maps "
            f"{inverse_in} -> {inverse_out}, but F must invert G; both are built from model=, "
            "so set model.in_channels equal to model.out_channels"
        )
    for name, discriminator, channels in (
        ("A", discriminator_a, channels_a),
        ("B", discriminator_b, channels_b),
    ):
        taken = conv_channels(discriminator)[0]
        if taken != channels:
            raise ConfigError(
                f"discriminator_{name.lower()} takes {taken} channels but domain {name} images "
                f"have {channels}; set discriminator.in_channels={channels} (unpaired "
                "discriminators see one image: loss.conditional=false)"
            )
