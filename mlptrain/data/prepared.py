"""Image files (or images held as encoded bytes) -> one uint8 array of prepared images: decoded on every core the
first time, cached after.

The cache key is the files' relative names, sizes and modification times,
the preparation (``preprocess`` and ``image_size``), and the code that
prepares them (``data/images.py`` and ``data/prepare.py``): change any and the
images are prepared afresh. A first load of many files runs in worker
processes (spawned, so that nothing of the parent's threads is inherited), a
chunk of files per task, one worker per available core. ``parquetfile``
hands its encoded images to the same workers (``prepare_encoded``) and keeps
its own cache entries.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import numpy as np

from mlptrain.data.cache import ArrayCache, cache_key
from mlptrain.data.download import ProgressFactory
from mlptrain.data.images import read_image
from mlptrain.data.parts import Preparation
from mlptrain.data.prepare import prepare_image, size_text
from mlptrain.errors import DataError
from mlptrain.threads import available_cores

Prepared = tuple[list[np.ndarray], list[bool]]  # uint8 images, and whether each was blank

PARALLEL_MIN = 1000  # fewer files than this are prepared in this process: starting workers would cost more
CHUNK = 250  # files per task: few enough tasks to keep the overhead low, enough to share out evenly


@functools.cache
def code_digest() -> str:
    """A digest of the code that reads and prepares images: a change to it makes earlier cache entries stale."""
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in ("images.py", "prepare.py"))).hexdigest()


def prepare_files(root: Path, files: list[tuple[str, int, int]], preparation: Preparation, cache: ArrayCache,
                  progress: ProgressFactory | None = None) -> tuple[np.ndarray, int, str, bool]:
    """``files`` (``(name relative to root, size, mtime_ns)``) prepared: images ``(n, h, w)`` uint8, how many were
    blank, the cache key, and whether they came from the cache."""
    size = preparation.image_size if preparation.preprocess == "mnist" else None
    key = cache_key("folders", code_digest(), preparation.preprocess, size, files)
    cached = cache.load(key)
    if cached is not None:
        return cached[0]["images"], int(cached[1]["blank"]), key, True
    paths = [os.path.join(root, name) for name, _, _ in files]
    images, blanks = prepare_all(paths, preparation, progress, f"preparing {root.name}")
    stacked = stack_images(images, paths)
    blank = int(sum(blanks))
    cache.store(key, {"images": stacked}, {"source": str(root.resolve()), "blank": blank,
                                           "preprocess": preparation.preprocess, "image_size": size})
    return stacked, blank, key, False


def prepare_all(items: list[Any], preparation: Preparation, progress: ProgressFactory | None, desc: str,
                worker: Callable[[list[Any], Preparation], Prepared] | None = None) -> Prepared:
    """Every item (a file name for ``prepare_chunk``, the default ``worker``; ``(bytes, name)`` for
    ``prepare_encoded``) prepared, in order: in this process for a few, in worker processes for many."""
    worker = worker or prepare_chunk
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    workers = min(available_cores(), len(chunks))
    images: list[np.ndarray] = []
    blanks: list[bool] = []
    with (progress(desc, len(items)) if progress else nullcontext(lambda n: None)) as advance:
        if len(items) < PARALLEL_MIN or workers < 2:
            done = (worker(chunk, preparation) for chunk in chunks)
            for chunk_images, chunk_blanks in done:
                images += chunk_images
                blanks += chunk_blanks
                advance(len(chunk_images))
            return images, blanks
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(worker, chunk, preparation) for chunk in chunks]
            try:
                for future in futures:
                    chunk_images, chunk_blanks = future.result()  # a worker's DataError is raised here
                    images += chunk_images
                    blanks += chunk_blanks
                    advance(len(chunk_images))
            except BaseException:
                pool.shutdown(cancel_futures=True)  # one unreadable file: do not prepare the rest first
                raise
    return images, blanks


def prepare_chunk(paths: list[str], preparation: Preparation) -> Prepared:
    """Each file read and prepared: uint8 images (``image_size`` square, or the file's own size with ``none``) and
    whether each was blank. Runs in a worker process; DataError naming the file that cannot be read."""
    return _prepare_each(((Path(path), path) for path in paths), preparation)


def prepare_encoded(encoded: list[tuple[bytes, str]], preparation: Preparation) -> Prepared:
    """``prepare_chunk`` for images held as encoded bytes (a PNG's, a JPEG's), each with its name for messages."""
    return _prepare_each(((io.BytesIO(data), given) for data, given in encoded), preparation)


def _prepare_each(sources: Iterable[tuple[Path | BinaryIO, str]], preparation: Preparation) -> Prepared:
    side = preparation.image_size
    images, blanks = [], []
    for source, given in sources:
        gray = read_image(source, given)
        shape = (side, side) if preparation.preprocess == "mnist" else gray.shape
        image, blank = prepare_image(gray, shape, preparation.preprocess, given)
        images.append(np.rint(image * 255.0).astype(np.uint8))
        blanks.append(blank)
    return images, blanks


def stack_images(images: list[np.ndarray], files: list[str]) -> np.ndarray:
    """One ``(n, h, w)`` array; under ``none`` the images must share one size (DataError naming the odd one)."""
    first = images[0].shape
    for path, image in zip(files, images):
        if image.shape != first:
            raise DataError(f"{path} is {size_text(image.shape)} but {files[0]} is {size_text(first)}; with "
                            "--preprocess none every image must have one size: resize them, or use "
                            "--preprocess mnist")
    return np.stack(images)
