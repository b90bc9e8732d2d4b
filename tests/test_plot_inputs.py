"""``mlptrain plot`` draws inputs.png: training images as the run's net receives them, for every kind of data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from userdata import SHAPES, photos, small_images, write_folders, write_parquet

from mlptrain.cli import cli
from mlptrain.data.loading import load_dataset
from mlptrain.data.parts import Preparation
from mlptrain.plots import inputs

from synthetic import write_dataset

FIT = ["--hidden", "8", "--epochs", "1", "--val-size", "6", "--batch-size", "16", "--quiet"]


def make_set(kind: str, root: Path) -> Path:
    """A small data set of ``kind``: IDX (digits-like noise bands), photo-like class folders or Parquet PNGs
    (dark on light, off-centre, noisy), or .npz rows (CSV rows take the same path)."""
    if kind == "idx":
        return write_dataset(root / "idx", n_train=60, n_test=30)
    if kind == "folders":
        return write_folders(root / "shapes", per_class=8)
    if kind == "parquet":
        encoded, labels = photos(36)
        return write_parquet(root / "shapes.parquet", encoded, labels)
    images, labels = small_images(60)
    np.savez(root / "rows.npz", x_train=images, y_train=labels, x_test=images[:9], y_test=labels[:9])
    return root / "rows.npz"


def drawn_tiles(fig, n: int, shape: tuple[int, int]) -> np.ndarray:
    """The images the figure's grid shows, (n, h, w) uint8, read back from the array imshow was given."""
    grid = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
    h, w = shape
    gap = inputs._gap(h)
    tiles = []
    for i in range(n):
        r, c = divmod(i, inputs.COLUMNS)
        top = r * (h + gap) + gap
        tiles.append(grid[top:top + h, c * (w + 1):c * (w + 1) + w])
    return np.rint(np.array(tiles) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["idx", "folders", "parquet", "npz"])
def test_inputs_png_shows_the_prepared_training_images_under_their_class_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    dataset, cache = make_set(kind, tmp_path), tmp_path / "cache"
    runner = CliRunner()
    extra = (["--image-size", "16"] if kind in ("folders", "parquet") else []) + \
        (["--test-size", "9"] if kind in ("parquet", "csv") else [])
    fit = runner.invoke(cli, ["fit", "--dataset", str(dataset), *FIT, *extra, "--out", str(tmp_path / "run"),
                              "--data-dir", str(cache)])
    assert fit.exit_code == 0, fit.output
    figures = []
    real_save = inputs.save
    monkeypatch.setattr(inputs, "save", lambda fig, path: figures.append(fig) or real_save(fig, path))
    result = runner.invoke(cli, ["plot", str(tmp_path / "run"), "--data-dir", str(cache)])
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert f"wrote {tmp_path / 'run' / 'inputs.png'}" in result.stdout.splitlines()
    with Image.open(tmp_path / "run" / "inputs.png") as png:
        assert png.format == "PNG" and png.size[0] > 400
    # The images the run trained on, loaded afresh (no cache) with the preparation the run was given.
    data = load_dataset(dataset, "again", Preparation(image_size=16, test_size=9))
    side = 16 if kind in ("folders", "parquet") else 8
    assert data.image_shape == (side, side)
    chosen = inputs.pick(data.train_labels, inputs.COUNT)
    tiles = drawn_tiles(figures[0], len(chosen), (side, side))
    np.testing.assert_array_equal(tiles, data.train_images[chosen].reshape(-1, side, side))
    names = [text.get_text() for text in figures[0].axes[0].texts]
    numbers = kind in ("idx", "npz")  # no class names of their own: the class numbers
    assert names == [str(k) if numbers else SHAPES[k] for k in data.train_labels[chosen]]
    assert len(chosen) == min(inputs.COUNT, len(data.train_labels))
    assert set(names) == ({"0", "1", "2"} if numbers else set(SHAPES))
    if not numbers:  # dark-on-light photos arrive as white ink on black, as MNIST's digits
        assert tiles[:, [0, -1], :].max() == 0 and tiles.max() == 255


def test_inputs_png_is_skipped_in_one_line_when_the_data_is_gone(tmp_path: Path) -> None:
    dataset = write_folders(tmp_path / "shapes", per_class=4)
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", "--dataset", str(dataset), *FIT, "--out", str(tmp_path / "run"),
                               "--data-dir", str(tmp_path / "cache")]).exit_code == 0
    dataset.rename(tmp_path / "moved")
    result = runner.invoke(cli, ["plot", str(tmp_path / "run"), "--data-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"skipped {tmp_path / 'run' / 'inputs.png'}: the run's data set {dataset} is no longer "
                             f"at {dataset} (moved or deleted), and plot re-reads the training images from it (never "
                             "downloading); put it back there to draw them\n")
    assert (tmp_path / "run" / "curves.png").is_file() and not (tmp_path / "run" / "inputs.png").exists()
    assert "Traceback" not in result.output


def test_a_known_data_set_missing_from_the_cache_is_not_downloaded(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = write_dataset(tmp_path / "tiny", n_train=60, n_test=30)
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--out", str(tmp_path / "run")]).exit_code == 0
    config = tmp_path / "run" / "config.yaml"  # as if it had trained on mnist, now gone from every cache
    config.write_text(config.read_text().replace(f"dataset: {tiny}", "dataset: mnist"))
    summary = tmp_path / "run" / "summary.json"
    summary.write_text(summary.read_text().replace(str(tiny.resolve()), str(tmp_path / "gone" / "mnist")))
    monkeypatch.setattr("mlptrain.data.loading.ensure_dataset", lambda *a, **k: pytest.fail("downloaded"))
    result = runner.invoke(cli, ["plot", str(tmp_path / "run"), "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 0 and result.stderr.count("\n") == 1, result.output
    assert "the run's data set mnist is no longer at" in result.stderr
    assert "download it again (mlptrain data download mnist)" in result.stderr
