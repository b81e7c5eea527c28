"""pix2pix as the reference implementation trains it, in a plain PyTorch loop (no Lightning).

Written from reading junyanz/pytorch-CycleGAN-and-pix2pix (``data/aligned_dataset.py``,
``data/base_dataset.py``, ``models/pix2pix_model.py``, ``models/networks.py``); not a copy of
it. The networks are this project's ``UnetGenerator`` and ``PatchDiscriminator`` (their
structure, widths and N(0, 0.02) initialisation follow the reference's; parameter counts are
pinned in tests/test_parameter_counts.py), so a difference between this loop and the
framework's run lies in the data pipeline or the training algorithm, which is what the parity
study (experiments/parity/README.md) is after.

The reference pipeline, per training pair:
  1. open the A|B image with PIL, split it into A (left) and B (right);
  2. draw one crop corner x, y ~ U{0..load-crop} and one flip (p=0.5) with python's ``random``;
  3. resize each half to load x load with PIL bicubic (which widens its kernel when it shrinks,
     i.e. antialiases), crop, flip, map to [-1, 1].
The reference step (``Pix2PixModel.optimize_parameters``): G(x) once; D step on
½·[BCE(D(x, G(x).detach()), 0) + BCE(D(x, y), 1)]; G step with D frozen on
BCE(D(x, G(x)), 1) + 100·|G(x) − y|₁. Adam 2e-4, β = (0.5, 0.999); the linear-decay factor
1 − max(0, e + 1 − n)/(n_decay + 1) after e finished epochs.

``resize`` swaps step 3's filter for OpenCV's (``cv2_cubic``: the framework's until 2026-11-30,
``cv2.INTER_CUBIC``, no antialiasing; ``cv2_area``) to measure the filter alone.

Usage (from the repository root)::

    PYTHONPATH=src python experiments/parity/reference_loop.py --seed 0 --out <run dir>

Run the same command again to continue an interrupted run from its ``resume.pth``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import Dataset

from pix2pix_lit.data.io import list_images
from pix2pix_lit.networks import PatchDiscriminator, UnetGenerator

ResizeFn = Callable[[Image.Image, int], Image.Image]


def _cv2_resize(flag: int) -> ResizeFn:
    def resize(image: Image.Image, size: int) -> Image.Image:
        return Image.fromarray(cv2.resize(np.asarray(image), (size, size), interpolation=flag))

    return resize


RESIZES: dict[str, ResizeFn] = {
    "pil": lambda image, size: image.resize((size, size), Image.BICUBIC),
    "cv2_cubic": _cv2_resize(cv2.INTER_CUBIC),
    "cv2_area": _cv2_resize(cv2.INTER_AREA),
}


def to_signed_tensor(image: Image.Image) -> Tensor:
    """HWC uint8 PIL image → (3, H, W) float in [-1, 1] (ToTensor then Normalize(0.5, 0.5))."""
    array = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)
    return array / 127.5 - 1.0


def split_halves(path: Path, direction: str) -> tuple[Image.Image, Image.Image]:
    """(input, target) halves of an A|B file; ``BtoA`` takes the right half as input."""
    ab = Image.open(path).convert("RGB")
    width, height = ab.size
    a = ab.crop((0, 0, width // 2, height))
    b = ab.crop((width // 2, 0, width, height))
    return (a, b) if direction == "AtoB" else (b, a)


class ReferencePairs(Dataset):
    """The reference's aligned dataset: one crop corner and one flip drawn per pair.

    Training (``load_size`` > ``crop_size``) crops and flips; ``train=False`` resizes straight
    to ``crop_size`` (the test pipeline with load = crop and no flip).
    """

    def __init__(
        self,
        root: Path,
        load_size: int,
        crop_size: int,
        resize: str = "pil",
        direction: str = "BtoA",
        train: bool = True,
    ) -> None:
        self.paths = list_images(root)
        self.load_size = load_size if train else crop_size
        self.crop_size = crop_size
        self.resize = RESIZES[resize]
        self.direction = direction
        self.train = train

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x_img, y_img = split_halves(self.paths[index], self.direction)
        room = self.load_size - self.crop_size
        # the order of the draws is the reference's get_params: x, y, then the flip
        left, top = random.randint(0, room), random.randint(0, room)
        flip = self.train and random.random() > 0.5
        box = (left, top, left + self.crop_size, top + self.crop_size)
        out = []
        for image in (x_img, y_img):
            image = self.resize(image, self.load_size).crop(box)
            if flip:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            out.append(to_signed_tensor(image))
        return out[0], out[1]


def gan_loss(logits: Tensor, target_is_real: bool) -> Tensor:
    """The reference GANLoss in ``vanilla`` mode: BCE with logits against a constant map."""
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    return F.binary_cross_entropy_with_logits(logits, target)


def reference_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    lambda_l1: float = 100.0,
) -> dict[str, float]:
    """One ``optimize_parameters``: forward, D step (halved objective), G step with D frozen."""
    fake = generator(x)
    discriminator.requires_grad_(True)
    opt_d.zero_grad()
    loss_d_fake = gan_loss(discriminator(torch.cat([x, fake.detach()], 1)), False)
    loss_d_real = gan_loss(discriminator(torch.cat([x, y], 1)), True)
    (0.5 * (loss_d_fake + loss_d_real)).backward()
    opt_d.step()

    discriminator.requires_grad_(False)
    opt_g.zero_grad()
    loss_g_gan = gan_loss(discriminator(torch.cat([x, fake], 1)), True)
    loss_g_l1 = F.l1_loss(fake, y)
    (loss_g_gan + lambda_l1 * loss_g_l1).backward()
    opt_g.step()
    return {
        "D_fake": float(loss_d_fake.detach()),
        "D_real": float(loss_d_real.detach()),
        "G_GAN": float(loss_g_gan.detach()),
        "G_L1": float(loss_g_l1.detach()),
    }


def build_networks(num_downs: int = 7) -> tuple[UnetGenerator, PatchDiscriminator]:
    """U-Net (``num_downs=7``: U-Net128) and the 70x70 PatchGAN, batch norm, dropout on."""
    generator = UnetGenerator(3, 3, num_downs=num_downs, ngf=64, norm="batch", use_dropout=True)
    discriminator = PatchDiscriminator(6, ndf=64, n_layers=3, norm="batch")
    return generator, discriminator


def linear_decay_factor(n_epochs: int, n_epochs_decay: int) -> Callable[[int], float]:
    return lambda epoch: 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


def epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of an epoch (the reference's shuffling DataLoader), recomputable
    from (seed, epoch) so a resumed run continues the same order."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def train(
    data_root: Path,
    out: Path,
    *,
    seed: int,
    resize: str = "pil",
    load_size: int = 143,
    crop_size: int = 128,
    n_epochs: int = 5,
    n_epochs_decay: int = 5,
    max_steps: int | None = None,
    save_every: int = 100,
) -> UnetGenerator:
    """Train and save ``out/generator.pth`` and ``out/train_log.json`` (epoch means, times).

    Every ``save_every`` steps ``out/resume.pth`` holds everything the run needs to continue
    exactly (weights, optimizers, schedules, position in the epoch, random states); run the
    same command again to continue from it. ``max_steps`` stops early (for tests).
    """
    dataset = ReferencePairs(data_root / "train", load_size, crop_size, resize)
    # before the networks: their initial weights come from the seed too (a resume loads them)
    random.seed(seed)
    torch.manual_seed(seed)
    generator, discriminator = build_networks(num_downs=int(np.log2(crop_size)))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rule = linear_decay_factor(n_epochs, n_epochs_decay)
    schedulers = [LambdaLR(opt, rule) for opt in (opt_g, opt_d)]
    stateful = {"G": generator, "D": discriminator, "opt_G": opt_g, "opt_D": opt_d}
    stateful.update(sched_G=schedulers[0], sched_D=schedulers[1])
    out.mkdir(parents=True, exist_ok=True)
    resume = out / "resume.pth"
    state = {"epoch": 0, "position": 0, "steps": 0, "sums": {}, "log": [], "wall_s": 0.0}
    if resume.is_file():
        saved = torch.load(resume, weights_only=False)
        for key, obj in stateful.items():
            obj.load_state_dict(saved[key])
        random.setstate(saved["python_random"])
        torch.set_rng_state(saved["torch_random"])
        state = saved["progress"]
    generator.train()
    discriminator.train()

    def save() -> None:
        snapshot = {key: obj.state_dict() for key, obj in stateful.items()}
        snapshot.update(python_random=random.getstate(), torch_random=torch.get_rng_state())
        snapshot["progress"] = {**state, "wall_s": state["wall_s"] + time.time() - start}
        torch.save(snapshot, resume.with_suffix(".part"))
        resume.with_suffix(".part").replace(resume)

    start = time.time()
    while state["epoch"] < n_epochs + n_epochs_decay:
        order = epoch_order(len(dataset), seed, state["epoch"])
        while state["position"] < len(order):
            x, y = dataset[order[state["position"]]]
            losses = reference_step(generator, discriminator, opt_g, opt_d, x[None], y[None])
            for key, value in losses.items():
                state["sums"][key] = state["sums"].get(key, 0.0) + value
            state["position"] += 1
            state["steps"] += 1
            if state["steps"] % save_every == 0:
                save()
            if max_steps is not None and state["steps"] >= max_steps:
                break
        row = {k: v / state["position"] for k, v in state["sums"].items()}
        row.update(epoch=state["epoch"], lr=opt_g.param_groups[0]["lr"])
        row["wall_s"] = state["wall_s"] + time.time() - start
        state["log"].append(row)
        print(json.dumps(row), flush=True)
        if max_steps is not None and state["steps"] >= max_steps:
            break
        # the paper's schedule stepped after each epoch (see experiments/parity/README.md on
        # the reference versions that step it before)
        for scheduler in schedulers:
            scheduler.step()
        state.update(epoch=state["epoch"] + 1, position=0, sums={})
        save()
    torch.save(generator.state_dict(), out / "generator.pth")
    (out / "train_log.json").write_text(json.dumps(state["log"], indent=2))
    return generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/facades"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resize", choices=sorted(RESIZES), default="pil")
    parser.add_argument("--load-size", type=int, default=143)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--n-epochs", type=int, default=5)
    parser.add_argument("--n-epochs-decay", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train(
        args.data,
        args.out,
        seed=args.seed,
        resize=args.resize,
        load_size=args.load_size,
        crop_size=args.crop_size,
        n_epochs=args.n_epochs,
        n_epochs_decay=args.n_epochs_decay,
        max_steps=args.max_steps,
        save_every=args.save_every,
    )


if __name__ == "__main__":
    main()
