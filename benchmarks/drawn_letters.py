"""Write a class-folder data set of "photographed" letters A-J, the worked example of docs/data.md.

Each image is one letter in Pillow's default font, at a random size, stroke width, slant, width and rotation, dark ink
on light, unevenly lit, noisy paper, off-centre, on a sheet of a random size (PNG and JPEG):

    DIR/letters/train/<A..J>/*   DIR/letters/test/<A..J>/*   DIR/photos/*.jpg (a few more, for mlptrain predict)

    python benchmarks/drawn_letters.py /tmp/example [--per-class 100] [--picture docs/preparation.png]

``--picture`` also draws what the preparation makes of a few of them (photo above, the net's 28x28 view
below), the figure of docs/data.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHIJ"


def letter_photo(letter: str, rng: np.random.Generator) -> Image.Image:
    """One letter drawn dark on a light sheet of 80-240 pixels: slanted, turned, off-centre, unevenly lit, noisy."""
    sheet = int(rng.integers(80, 241))
    ink = Image.new("L", (sheet * 2, sheet * 2), 0)
    size = int(sheet * rng.uniform(0.45, 0.8))
    font = ImageFont.load_default(size=size)
    stroke = int(rng.integers(0, max(2, size // 12)))
    ImageDraw.Draw(ink).text((sheet, sheet), letter, fill=255, font=font, anchor="mm", stroke_width=stroke,
                             stroke_fill=255)
    slant, stretch = rng.uniform(-0.4, 0.4), rng.uniform(0.7, 1.4)  # a hand's slant; narrow or wide letters
    ink = ink.transform(ink.size, Image.Transform.AFFINE, (stretch, slant, (1 - stretch - slant) * sheet, 0, 1, 0),
                        resample=Image.Resampling.BILINEAR)
    ink = ink.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR)
    shift = rng.uniform(-0.15, 0.15, 2) * sheet
    left, top = int(sheet / 2 + shift[0]), int(sheet / 2 + shift[1])
    ink_array = np.asarray(ink.crop((left, top, left + sheet, top + sheet)), np.float32) / 255
    light = rng.uniform(200, 235) + np.linspace(rng.uniform(-25, 0), rng.uniform(0, 15), sheet)[None, :]
    paper = light - ink_array * rng.uniform(140, 190) + rng.normal(0, rng.uniform(3, 9), ink_array.shape)
    return Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))


def write_letters(root: Path, per_class: int, test_per_class: int, photos: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for letter in LETTERS:
            folder = root / "letters" / split / letter
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                suffix = ".png" if i % 2 else ".jpg"
                letter_photo(letter, rng).save(folder / f"{letter.lower()}{i:04d}{suffix}", quality=90)
    (root / "photos").mkdir(exist_ok=True)
    for i in range(photos):
        letter = LETTERS[i % len(LETTERS)]
        letter_photo(letter, rng).save(root / "photos" / f"photo-{i}-{letter}.jpg", quality=90)


def picture(root: Path, out: Path, n: int = 6, cell: int = 112) -> None:
    """Photos of the test set above, what the preparation makes of them (the net's input) below: a small PNG."""
    from mlptrain.data.images import read_image
    from mlptrain.data.prepare import mnist_style

    files = [sorted((root / "letters" / "test" / letter).iterdir())[1] for letter in LETTERS[:n]]
    grid = Image.new("L", (n * cell, 2 * cell + 20), 255)
    for i, path in enumerate(files):
        photo = Image.open(path).convert("L")
        photo.thumbnail((cell - 8, cell - 8))
        grid.paste(photo, (i * cell + (cell - photo.width) // 2, (cell - photo.height) // 2))
        prepared, _ = mnist_style(read_image(path, str(path)), (28, 28))
        seen = Image.fromarray(np.rint(prepared * 255).astype(np.uint8)).resize((84, 84), Image.Resampling.NEAREST)
        grid.paste(seen, (i * cell + (cell - 84) // 2, cell + 20 + (cell - 84) // 2 - 8))
    ImageDraw.Draw(grid).text((4, cell + 2), "what the net sees: 28x28, white on black, 20-pixel box, centred by mass",
                              fill=0, font=ImageFont.load_default(size=13))
    grid.save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--per-class", type=int, default=100, help="training images per letter")
    parser.add_argument("--test-per-class", type=int, default=50, help="test images per letter")
    parser.add_argument("--photos", type=int, default=5, help="extra photos for predict")
    parser.add_argument("--picture", type=Path, help="also write the preparation figure here")
    args = parser.parse_args()
    write_letters(args.root, args.per_class, args.test_per_class, args.photos)
    if args.picture:
        picture(args.root, args.picture)


if __name__ == "__main__":
    main()
