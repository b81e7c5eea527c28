"""Finding and reading the image files of a paired dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pix2pix_lit.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by name.

    Extensions are matched case-insensitively against :data:`IMAGE_EXTENSIONS`; other files
    and sub-folders are ignored.
    """
    return sorted(
        path
        for path in Path(folder).iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def image_size(path: str | Path, decode: bool = False) -> tuple[int, int]:
    """Return ``(width, height)`` of an image, reading only its header unless ``decode``.

    ``decode=True`` reads the whole image, so truncated or corrupt files are caught too.
    """
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            return image.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err


def read_rgb(path: str | Path) -> np.ndarray:
    """Load an image as an ``H x W x 3`` uint8 RGB array.

    Grayscale, alpha, palette, CMYK and 16-bit images are converted to 8-bit RGB.
    """
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # Pillow's own I->RGB conversion clips at 255 instead of rescaling 16-bit values.
        gray = np.asarray(image, dtype=np.float64) / 257.0
        return np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
