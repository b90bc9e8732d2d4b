"""``--dataset`` on Parquet files as the Hugging Face hub holds image data sets (the ``parquet`` extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from userdata import SHAPES, photos, write_parquet

from mlptrain.cli import cli
from mlptrain.data.formats import FORMATS, detect
from mlptrain.data.loading import load_dataset
from mlptrain.data.parts import Preparation

pytest.importorskip("pyarrow")

FIT = ["--hidden", "16", "--epochs", "3", "--val-size", "10%", "--batch-size", "16", "--lr", "0.1", "--quiet"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def hub_layout(root: Path, n_train: int = 36, n_test: int = 12, folder: str = "data") -> Path:
    """``root/<folder>/train-0000K-of-00002.parquet`` (two shards) and ``test-00000-of-00001.parquet``, as
    ``push_to_hub`` writes them: the Image feature's struct column and ClassLabel names in the metadata."""
    encoded, labels = photos(n_train + n_test)
    half = n_train // 2
    write_parquet(root / folder / "train-00000-of-00002.parquet", encoded[:half], labels[:half])
    write_parquet(root / folder / "train-00001-of-00002.parquet", encoded[half:n_train], labels[half:n_train])
    write_parquet(root / folder / "test-00000-of-00001.parquet", encoded[n_train:], labels[n_train:])
    return root


def test_the_hub_layout_in_shards_trains_and_evaluates_under_the_classlabel_names(runner: CliRunner,
                                                                                  tmp_path: Path) -> None:
    root = hub_layout(tmp_path / "shapes")
    result = runner.invoke(cli, ["fit", "--dataset", str(root), *FIT, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    data = summary["dataset"]
    assert (data["format"], data["layout"], data["n_train"], data["n_test"]) == ("parquet", "train/test", 36, 12)
    assert data["train"]["columns"] == {"image": "image", "label": "label"} and data["n_classes"] == 3
    assert sorted(data["sha256"]) == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet",
                                      "data/train-00001-of-00002.parquet"]
    assert summary["test"]["accuracy"] >= 0.9  # dark-on-light photos of three shapes, prepared as MNIST
    report = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["class_names"] == list(SHAPES)


def test_parquet_images_are_the_same_arrays_as_those_pngs_in_class_folders(tmp_path: Path) -> None:
    """The bytes go through the class folders' preparation: the same PNGs as files give the same arrays."""
    encoded, labels = photos(24)
    write_parquet(tmp_path / "pq" / "train.parquet", encoded[:18], labels[:18], struct=False, class_names=False)
    write_parquet(tmp_path / "pq" / "test.parquet", encoded[18:], labels[18:], struct=False, class_names=False)
    for split, rows in (("train", range(18)), ("test", range(18, 24))):
        for i in rows:
            folder = tmp_path / "folders" / split / SHAPES[labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:03d}.png").write_bytes(encoded[i])
    preparation = Preparation(image_size=20)
    parquet, folders = load_dataset(tmp_path / "pq", "pq", preparation), load_dataset(tmp_path / "folders", "f",
                                                                                      preparation)
    assert parquet.class_names == ("0", "1", "2")  # no ClassLabel names: the class numbers
    for part in ("train", "test"):
        order = np.argsort(getattr(folders, f"{part}_labels"), kind="stable")  # folders: class by class
        mine = np.argsort(getattr(parquet, f"{part}_labels"), kind="stable")
        np.testing.assert_array_equal(getattr(parquet, f"{part}_images")[mine],
                                      getattr(folders, f"{part}_images")[order])
        np.testing.assert_array_equal(getattr(parquet, f"{part}_labels")[mine],
                                      getattr(folders, f"{part}_labels")[order])
    assert parquet.image_shape == (20, 20)


def test_one_file_is_split_by_test_size_and_cached(tmp_path: Path) -> None:
    encoded, labels = photos(30)
    path = write_parquet(tmp_path / "shapes.parquet", encoded, labels, struct=False)
    first = load_dataset(path, "s", Preparation(test_size=6), tmp_path / "cache")
    assert (len(first.train_labels), len(first.test_labels), first.class_names) == (24, 6, SHAPES)
    assert first.details["layout"] == "file" and first.details["whole"]["cached"] is False
    again = load_dataset(path, "s", Preparation(test_size=6), tmp_path / "cache")
    assert again.details["whole"]["cached"] is True
    np.testing.assert_array_equal(again.train_images, first.train_images)
    other = load_dataset(path, "s", Preparation(image_size=16, test_size=6), tmp_path / "cache")
    assert other.details["whole"]["cached"] is False and other.image_shape == (16, 16)  # the preparation is keyed


def test_many_images_are_decoded_in_worker_processes_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.data import prepared

    path = hub_layout(tmp_path / "shapes", n_train=12, n_test=6)
    alone = load_dataset(path, "s")
    monkeypatch.setattr(prepared, "PARALLEL_MIN", 1)
    monkeypatch.setattr(prepared, "CHUNK", 4)
    monkeypatch.setattr(prepared, "available_cores", lambda: 2)
    workers = load_dataset(path, "s")
    np.testing.assert_array_equal(workers.train_images, alone.train_images)
    np.testing.assert_array_equal(workers.test_images, alone.test_images)


@pytest.mark.parametrize("place", ["mnist", "mnist/train-and-test"])
def test_the_layouts_of_the_hubs_parquet_export_are_found(tmp_path: Path, place: str) -> None:
    """``mnist/train-*.parquet`` (a subset's folder) and ``mnist/train/0000.parquet`` (the hub's conversion)."""
    encoded, labels = photos(12)
    if place == "mnist":
        write_parquet(tmp_path / "mnist" / "train-00000-of-00001.parquet", encoded[:9], labels[:9])
        write_parquet(tmp_path / "mnist" / "test-00000-of-00001.parquet", encoded[9:], labels[9:])
    else:
        write_parquet(tmp_path / "mnist" / "train" / "0000.parquet", encoded[:9], labels[:9])
        write_parquet(tmp_path / "mnist" / "test" / "0000.parquet", encoded[9:], labels[9:])
    assert detect(tmp_path) is FORMATS["parquet"]
    data = load_dataset(tmp_path, "hub")
    assert (len(data.train_labels), len(data.test_labels)) == (9, 3)


def test_data_import_writes_a_parquet_set_as_idx(runner: CliRunner, tmp_path: Path) -> None:
    encoded, labels = photos(30)
    path = write_parquet(tmp_path / "shapes.parquet", encoded, labels)
    result = runner.invoke(cli, ["data", "import", str(path), "--test-size", "6", "--out", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "idx" / "classes.txt").read_text() == "across\ndown\nring\n"
    imported, original = load_dataset(tmp_path / "idx", "idx"), load_dataset(path, "p", Preparation(test_size=6))
    for split in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(imported, split), getattr(original, split))


def malformed(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A broken Parquet data set and the one line fit answers with (after ``Error: ``)."""
    encoded, labels = photos(12)
    root = tmp_path / "set"
    if case == "missing label column":
        path = write_parquet(root / "train.parquet", encoded, labels, label="digit_name", class_names=False)
        write_parquet(root / "test.parquet", encoded, labels)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)  # two integer columns and none named label: which one?
        pq.write_table(table.append_column("width", pa.array(np.full(12, 40), pa.int64())), path)
        return root, (f"{path}: no label column: digit_name, width are all integers; name the class-number column "
                      "label")
    if case == "undecodable image bytes":
        encoded[7] = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
        path = write_parquet(root / "train.parquet", encoded, labels)
        write_parquet(root / "test.parquet", encoded[:3], labels[:3])
        return root, (f"{path} row 7: ")
    if case == "empty split":
        write_parquet(root / "train.parquet", encoded, labels)
        path = write_parquet(root / "test.parquet", [], np.zeros(0, np.int64))
        return root, f"{path}: the file holds no rows (an empty split); add images"
    if case == "a row with only a path":
        encoded[2] = None
        path = write_parquet(tmp_path / "one.parquet", encoded, labels)
        return path, (f"{path} row 2: the image column holds only the path 'photo.png', no image bytes; export the "
                      "data set with the images embedded")
    if case == "several subsets":
        for subset in ("digits", "letters"):
            write_parquet(root / subset / "train-00000-of-00001.parquet", encoded, labels)
            write_parquet(root / subset / "test-00000-of-00001.parquet", encoded, labels)
        return root, (f"{root} holds the train and test Parquet files of several subsets (digits/, letters/); give "
                      "the folder of one of them as --dataset")
    assert case == "no image column"
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"pixels": pa.array([[0] * 4] * 12), "label": pa.array(labels)}), path)
    return path, (f"{path}: no image column (the columns: pixels, label); give the images as encoded files (PNG, "
                  "JPEG, ...) in a binary column or in Hugging Face's Image feature, a struct {bytes, path}")


MALFORMED = ["missing label column", "undecodable image bytes", "empty split", "a row with only a path",
             "no image column", "several subsets"]


@pytest.mark.parametrize("case", MALFORMED)
def test_each_malformed_parquet_set_is_one_clear_line(runner: CliRunner, tmp_path: Path, case: str) -> None:
    dataset, message = malformed(tmp_path, case)
    result = runner.invoke(cli, ["fit", "--dataset", str(dataset), *FIT, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_without_pyarrow_a_parquet_set_says_which_extra_to_install(runner: CliRunner, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    encoded, labels = photos(12)
    path = write_parquet(tmp_path / "shapes.parquet", encoded, labels)
    for module in [name for name in sys.modules if name == "pyarrow" or name.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError, as when not installed
    result = runner.invoke(cli, ["fit", "--dataset", str(path), *FIT, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.stdout == "", result.output
    assert result.stderr == (f"Error: {path} is a Parquet data set, and reading it needs pyarrow: "
                             "pip install 'mlptrain[parquet]'\n")
    assert not (tmp_path / "run").exists()
