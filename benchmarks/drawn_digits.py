"""Render "photographed" digits for trying ``mlptrain predict`` on pictures nobody took from MNIST.

Two sets of ten, each 200x200 dark ink on light, unevenly lit, noisy paper, off-centre:
``pen-<d>.png`` drawn with pen strokes (lines and arcs, like handwriting) and
``font-<d>.png`` typeset in Pillow's default font (thick stroke). The digit is in the name,
so the predictions can be checked by eye or with ``--json``. Usage:

    python benchmarks/drawn_digits.py /tmp/digits && mlptrain predict runs/my-run /tmp/digits
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Each digit as pen strokes in a 100x100 box: ("line", points) or ("arc", box, start, end) in degrees.
STROKES = {
    0: [("arc", (22, 8, 78, 92), 0, 360)],
    1: [("line", [(38, 24), (55, 8), (55, 92)])],
    2: [("arc", (24, 8, 76, 52), 180, 20), ("line", [(73, 38), (24, 92), (80, 92)])],
    3: [("arc", (26, 8, 72, 50), 200, 90), ("arc", (22, 46, 76, 92), 270, 160)],
    4: [("line", [(62, 8), (18, 66), (84, 66)]), ("line", [(62, 8), (62, 92)])],
    5: [("line", [(74, 10), (34, 10), (30, 46)]), ("arc", (24, 36, 78, 92), 210, 150)],
    6: [("line", [(68, 8), (32, 50)]), ("arc", (24, 46, 76, 92), 0, 360)],
    7: [("line", [(20, 10), (80, 10), (40, 92)])],
    8: [("arc", (30, 8, 70, 48), 0, 360), ("arc", (24, 48, 76, 92), 0, 360)],
    9: [("arc", (26, 8, 74, 52), 0, 360), ("line", [(73, 32), (64, 92)])],
}


def paper(ink: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Ink (black on white) as a photo: ink at ~45, paper at ~225, light falling off, sensor noise."""
    pixels = np.asarray(ink, np.float32) * 0.7 + 45
    pixels += np.linspace(-30, 10, pixels.shape[1])[None, :] + rng.normal(0, 7, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def pen_digit(d: int, rng: np.random.Generator, size: int = 200) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(1.0, 1.5)
    dx, dy = rng.uniform(5, size - 100 * scale - 5, 2)
    at = [lambda x, y: (dx + x * scale, dy + y * scale)][0]
    for stroke in STROKES[d]:
        if stroke[0] == "line":
            draw.line([at(x, y) for x, y in stroke[1]], fill=0, width=int(9 * scale), joint="curve")
        else:
            x0, y0, x1, y1 = stroke[1]
            draw.arc([*at(x0, y0), *at(x1, y1)], stroke[2], stroke[3], fill=0, width=int(9 * scale))
    return paper(image, rng)


def font_digit(d: int, rng: np.random.Generator, size: int = 200) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    font = ImageFont.load_default(size=120)
    xy = tuple(rng.integers(10, 90, 2))
    ImageDraw.Draw(image).text(xy, str(d), fill=0, font=font, stroke_width=4, stroke_fill=0)
    return paper(image, rng)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    for d in range(10):
        pen_digit(d, rng).save(out / f"pen-{d}.png")
        font_digit(d, rng).save(out / f"font-{d}.png")
    print(f"wrote 20 digits to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "drawn-digits"))
