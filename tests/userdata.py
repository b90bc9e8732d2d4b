"""Small data sets in every format ``--dataset PATH`` accepts, written by the tests (no real data needed).

The class-folder images are photograph-like, as a user's would be: dark shapes on light paper with a light
gradient and noise, off-centre, of several sizes and modes. Class k is a shape of its own (a bar across, a bar
down, a ring), so that a tiny net learns them in a few epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("across", "down", "ring")


def photo(shape: str, size: int, rng: np.random.Generator, dark_on_light: bool = True) -> np.ndarray:
    """A ``shape`` drawn with a thick pen somewhere on ``size`` x ``size`` uneven, noisy paper: uint8."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    extent = size * rng.uniform(0.35, 0.55)
    cx, cy = (size / 2 + rng.uniform(-0.15, 0.15) * size for _ in range(2))
    width = max(2, int(size * 0.06))
    half = extent / 2
    if shape == "across":
        draw.line([(cx - half, cy), (cx + half, cy)], fill=0, width=width)
    elif shape == "down":
        draw.line([(cx, cy - half), (cx, cy + half)], fill=0, width=width)
    else:
        draw.ellipse([cx - half, cy - half, cx + half, cy + half], outline=0, width=width)
    paper = np.asarray(image, np.float32) * 0.75 + 40
    paper += np.linspace(-20, 10, size)[None, :]
    paper += rng.normal(0, 6, paper.shape)
    paper = np.clip(paper, 0, 255)
    return (paper if dark_on_light else 255 - paper).astype(np.uint8)


def write_folders(root: Path, per_class: int = 20, split: bool = True, seed: int = 0,
                  sizes: tuple[int, ...] = (40, 64, 90), classes: tuple[str, ...] = SHAPES) -> Path:
    """Class folders of photo-like PNG, JPEG and BMP images: ``root/train/<class>/`` and ``root/test/<class>/``
    (``split``), or ``root/<class>/``."""
    rng = np.random.default_rng(seed)
    splits = {"train": per_class, "test": max(2, per_class // 2)} if split else {"": per_class}
    for split_name, count in splits.items():
        for k, name in enumerate(classes):
            folder = root / split_name / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = sizes[i % len(sizes)]
                pixels = photo(SHAPES[k % len(SHAPES)], size, rng)
                suffix = (".png", ".jpg", ".bmp")[i % 3]
                Image.fromarray(pixels).save(folder / f"{name}-{i:03d}{suffix}")
    return root


def small_images(n: int, side: int = 8, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` white-on-black ``side`` x ``side`` images uint8 and their labels: class k lights its own band of rows."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % n_classes).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    band = side // n_classes
    for k in range(n_classes):
        images[labels == k, k * band:(k + 1) * band, :] += 180
    return images, labels


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool = True, scale: float = 1.0,
              label_last: bool = False) -> Path:
    """Kaggle's layout: ``label,pixel0,...`` (``label_last``: the label column at the end, named)."""
    pixels = images.reshape(len(images), -1) * scale
    names = [f"pixel{i}" for i in range(pixels.shape[1])]
    lines = [",".join([*names, "label"] if label_last else ["label", *names])] if header else []
    for label, row in zip(labels, pixels):
        values = [f"{v:g}" for v in row]
        lines.append(",".join([*values, str(label)] if label_last else [str(label), *values]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def png_bytes(pixels: np.ndarray, format: str = "PNG") -> bytes:
    """``pixels`` (h, w) uint8 encoded as an image file's bytes."""
    import io

    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format=format)
    return stream.getvalue()


def photos(n: int, seed: int = 0, sizes: tuple[int, ...] = (40, 64)) -> tuple[list[bytes], np.ndarray]:
    """``n`` photo-like PNGs (dark shapes on light paper, off-centre, noisy) and their labels, class k = SHAPES[k]."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % len(SHAPES)).astype(np.int64)
    return [png_bytes(photo(SHAPES[k], sizes[i % len(sizes)], rng)) for i, k in enumerate(labels)], labels


HF_METADATA = {b"huggingface": b'{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": '
                               b'["across", "down", "ring"], "_type": "ClassLabel"}}}}'}


def write_parquet(path: Path, images: list[bytes | None], labels: np.ndarray, struct: bool = True,
                  label: str = "label", class_names: bool = True) -> Path:
    """A Parquet file as the Hugging Face hub has them: an image column (the Image feature's ``{bytes, path}``
    struct, or plain binary) and a label column, with the ClassLabel names in the schema's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if struct:
        kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        column = pa.array([{"bytes": b, "path": None if b else "photo.png"} for b in images], kind)
    else:
        column = pa.array(images, pa.binary())
    table = pa.table({"image": column, label: pa.array(labels, pa.int64())})
    if class_names:
        table = table.replace_schema_metadata(HF_METADATA)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
