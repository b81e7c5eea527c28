"""Rendered street-number-like digits: the stand-in for SVHN in the DTN digits experiment.

SVHN (Netzer et al. 2011) is a download; this renders labelled colour crops in its spirit from
fonts found on the machine (the DejaVu family of Debian's fonts-dejavu) and Pillow's built-in
scalable font: a centred digit (the label) between parts of neighbouring digits, random
background and ink colours, scale, offset, rotation, blur and sensor noise. The same seed gives
the same images on a machine with the same fonts; :func:`available_fonts` names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Debian/Ubuntu's fonts-dejavu; other systems fall back to Pillow's built-in font alone.
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEJAVU_FACES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
)
BUILTIN_FONT = "pillow-builtin"
# rendering happens on a canvas this many times the output size, then is cropped and shrunk
_CANVAS = 3
_MIN_CONTRAST = 0.25  # |luma(ink) - luma(background)| in [0, 1]


def available_fonts() -> list[str]:
    """The DejaVu faces installed here (file names), then Pillow's built-in font."""
    return [face for face in DEJAVU_FACES if (DEJAVU_DIR / face).is_file()] + [BUILTIN_FONT]


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    if name == BUILTIN_FONT:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(DEJAVU_DIR / name), size=size)


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]) / 255)


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A background and an ink colour at least ``_MIN_CONTRAST`` apart in luma."""
    while True:
        background, ink = rng.integers(0, 256, size=(2, 3))
        if abs(_luma(background) - _luma(ink)) >= _MIN_CONTRAST:
            return tuple(int(c) for c in background), tuple(int(c) for c in ink)


def render_digit(rng: np.random.Generator, label: int, size: int, fonts: Sequence[str]) -> Image:
    """One ``size`` x ``size`` RGB crop centred on ``label``, drawn with ``rng``'s choices."""
    canvas = size * _CANVAS
    background, ink = _colours(rng)
    image = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(image)
    font = _font(fonts[int(rng.integers(len(fonts)))], int(size * rng.uniform(0.55, 0.95)))
    centre = canvas / 2 + rng.uniform(-0.1, 0.1, size=2) * size
    left, _, right, _ = draw.textbbox((0, 0), str(label), font=font, anchor="mm")
    gap = (right - left) * rng.uniform(0.95, 1.25)
    # neighbours of a house number, cut by the crop like SVHN's
    for offset, present in ((-gap, rng.random() < 0.6), (gap, rng.random() < 0.6)):
        if present:
            neighbour = str(int(rng.integers(10)))
            draw.text((centre[0] + offset, centre[1]), neighbour, fill=ink, font=font, anchor="mm")
    draw.text(tuple(centre), str(label), fill=ink, font=font, anchor="mm")
    image = image.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, fillcolor=background)
    crop = (canvas - size) // 2
    image = image.crop((crop, crop, crop + size, crop + size))
    image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0, 1.0)))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(0, 8), (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


def render_digits(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` rendered digits: images ``(count, size, size, 3)`` uint8 and labels
    ``(count,)`` int64 in 0..9, balanced over the classes and shuffled."""
    rng = np.random.default_rng(seed)
    fonts = available_fonts()
    labels = rng.permutation(np.arange(count) % 10)
    images = np.stack([np.asarray(render_digit(rng, int(k), size, fonts)) for k in labels])
    return images, labels.astype(np.int64)
