"""Image grids without torchvision: tensors in [-1, 1] to uint8 arrays and PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """(N, C, H, W) in [-1, 1] → (N, 3, H, W) uint8; one channel is repeated to RGB."""
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def make_grid(columns: list[Tensor], padding: int = 2) -> np.ndarray:
    """Lay out ``columns`` (each (N, C, H, W) in [-1, 1]) as N rows → (H', W', 3) uint8.

    Row i shows columns[0][i] | columns[1][i] | …, e.g. input | output | target.
    """
    cols = [to_uint8(c) for c in columns]
    n, _, h, w = cols[0].shape
    grid = torch.full(
        (3, n * (h + padding) + padding, len(cols) * (w + padding) + padding),
        255,
        dtype=torch.uint8,
    )
    for j, col in enumerate(cols):
        for i in range(n):
            top, left = padding + i * (h + padding), padding + j * (w + padding)
            grid[:, top : top + h, left : left + w] = col[i]
    return grid.permute(1, 2, 0).numpy()


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
