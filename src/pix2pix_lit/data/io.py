"""Finding and reading the image files of a dataset."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pix2pix_lit.errors import ConfigError, DataError

# The reference's IMG_EXTENSIONS (jpg, jpeg, png, ppm, bmp, tif, tiff) plus webp; matched
# case-insensitively, so IMG_0001.JPG counts.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
)
CHANNELS: tuple[int, ...] = (1, 3)
# Pillow modes of 16-bit (and 32-bit integer) grayscale images, e.g. 16-bit PNGs.
_WIDE_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_UINT16_TO_UINT8 = 65535 / 255  # = 257: maps 0..65535 onto 0..255 exactly at both ends


def is_hidden(name: str) -> bool:
    """Dot files, including the ``._*`` resource forks macOS writes onto foreign disks."""
    return name.startswith(".")


@dataclass(frozen=True)
class ImageListing:
    """The images found under a folder, and the files passed over (hidden or not images)."""

    images: list[Path]
    ignored: list[Path] = field(default_factory=list)


def find_images(folder: str | Path, pattern: str = "*", recursive: bool = True) -> ImageListing:
    """The image files under ``folder`` whose names match ``pattern``, sorted by path.

    Like the reference implementation, sub-folders are searched too (``recursive``); hidden
    files and folders (``.DS_Store``, macOS ``._*`` files, ``.git``) and files that are not
    :data:`IMAGE_EXTENSIONS` (case-insensitive) are skipped and returned as ``ignored``.
    Files not matching ``pattern`` (a glob such as ``*.png``) are neither listed nor ignored:
    they are another side's files.
    """
    # Strings, not Paths, until the end: pathlib's parsing dominated listing 20k files.
    images: list[str] = []
    ignored: list[str] = []
    pattern = pattern.lower()
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if recursive and not is_hidden(d)]
        for name in files:
            lower = name.lower()
            if is_hidden(name) or os.path.splitext(lower)[1] not in IMAGE_EXTENSIONS:
                ignored.append(os.path.join(parent, name))
            elif fnmatch.fnmatchcase(lower, pattern):
                images.append(os.path.join(parent, name))
    return ImageListing(_sorted_paths(images), _sorted_paths(ignored))


def _sorted_paths(paths: list[str]) -> list[Path]:
    # Plain string order (differs from Path order only around characters below "/"): any
    # fixed order will do, and it is twice as fast.
    return [Path(p) for p in sorted(paths)]


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder`` (not in sub-folders), sorted by name."""
    return find_images(folder, recursive=False).images


def image_size(path: str | Path, decode: bool = False) -> tuple[int, int]:
    """Return ``(width, height)`` of an image, reading only its header unless ``decode``.

    ``decode=True`` reads the whole image, so truncated or corrupt files are caught too.
    """
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            return image.size
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err or type(err).__name__}") from err


def check_channels(channels: int, key: str) -> None:
    if channels not in CHANNELS:
        raise ConfigError(f"{key}={channels} is not valid; use 1 (grayscale) or 3 (RGB)")


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array as ``H x W x channels``: 1 is Pillow's luma
    (ITU-R 601-2, what ``convert("L")`` and the reference's grayscale transform give)."""
    if channels == 3:
        return image
    return np.asarray(Image.fromarray(image).convert("L"))[..., None]


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Load an image as an ``H x W x channels`` uint8 array (``channels`` 1 or 3).

    * palette (indexed) PNGs: their palette colours (a label map reads as its colours);
    * 16-bit and 32-bit integer grayscale: rescaled from the full 16-bit range, 65535 -> 255
      and 32768 -> 128 (Pillow's own conversion would clip everything above 255 to white);
    * RGBA, LA and palettes with transparency: the alpha channel is dropped, as the
      reference's ``convert("RGB")`` does (transparent pixels keep their stored colour);
    * CMYK and YCbCr (e.g. CMYK JPEGs) are converted to RGB, grayscale JPEGs repeated to RGB.
    """
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err or type(err).__name__}") from err
    if image.mode in _WIDE_INTEGER_MODES:
        wide = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(wide / _UINT16_TO_UINT8), 0, 255).astype(np.uint8)[..., None]
        return gray if channels == 1 else np.repeat(gray, 3, axis=2)
    return to_channels(np.asarray(image.convert("RGB"), dtype=np.uint8), channels)


def read_rgb(path: str | Path) -> np.ndarray:
    """Load an image as an ``H x W x 3`` uint8 RGB array (see :func:`read_image`)."""
    return read_image(path, 3)
