"""``--dataset PATH`` on a user's own data: class folders, CSV files, .npz archives; splits, caches, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from userdata import SHAPES, small_images, write_csv, write_folders

from mlptrain.cli import cli
from mlptrain.data.formats import FORMATS, layouts
from mlptrain.data.loading import load_dataset
from mlptrain.data.parts import Preparation, parse_size, stratified_split

from synthetic import write_dataset

FIT = ["--hidden", "16", "--epochs", "4", "--val-size", "10%", "--batch-size", "16", "--lr", "0.1", "--quiet"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def fit(runner: CliRunner, dataset: Path, out: Path, *extra: str):
    return runner.invoke(cli, ["fit", "--dataset", str(dataset), *FIT, "--out", str(out), *extra])


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# --- each format, trained and evaluated ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folders(tmp_path_factory.mktemp("own") / "shapes", per_class=24)


@pytest.fixture(scope="module")
def folder_run(folders: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "shapes"
    result = fit(CliRunner(), folders, out)
    assert result.exit_code == 0, result.output
    return out


def test_class_folders_train_and_evaluate_under_the_folder_names(runner: CliRunner, folder_run: Path,
                                                                  folders: Path) -> None:
    record = summary(folder_run)
    assert record["test"]["accuracy"] >= 0.9  # dark-on-light photos of three shapes, prepared as MNIST
    data = record["dataset"]
    assert (data["format"], data["layout"], data["n_train"], data["n_test"]) == ("folders", "train/test", 72, 36)
    assert data["image_shape"] == [28, 28] and data["n_classes"] == 3
    report = runner.invoke(cli, ["eval", str(folder_run)])
    assert report.exit_code == 0, report.output
    lines = report.stdout.splitlines()
    assert lines[0].startswith(f"{folders} test set, 36 images: accuracy")
    assert [line.split()[-1] for line in lines[3:6]] == list(SHAPES)  # per-class rows named by the folders
    assert json.loads((folder_run / "eval.json").read_text())["class_names"] == list(SHAPES)


def test_eval_on_a_test_folder_alone_follows_the_runs_classes(runner: CliRunner, folder_run: Path, folders: Path,
                                                              tmp_path: Path) -> None:
    only = tmp_path / "more"
    for name in ("ring", "down"):  # a test set without 'across': labels must still be the run's
        (only / "test" / name).mkdir(parents=True)
        for image in sorted((folders / "test" / name).iterdir())[:4]:
            (only / "test" / name / image.name).write_bytes(image.read_bytes())
    report = runner.invoke(cli, ["eval", str(folder_run), "--dataset", str(only), "--json"])
    assert report.exit_code == 0, report.output
    confusion = np.array(json.loads(report.stdout)["confusion"])
    assert confusion.sum(axis=1).tolist() == [0, 4, 4]  # across, down, ring
    (only / "test" / "cat").mkdir()
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(only / "test" / "cat" / "c.png")
    result = runner.invoke(cli, ["eval", str(folder_run), "--dataset", str(only)])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {only / 'test'} has class folder 'cat', which the run was not trained on; the "
                             "classes are across, down, ring\n")


def test_predict_reads_class_folders_and_uses_the_runs_preparation(runner: CliRunner, folder_run: Path,
                                                                   folders: Path) -> None:
    with np.load(folder_run / "weights.npz") as weights:
        assert str(weights["meta_preprocess"]) == "mnist"
    result = runner.invoke(cli, ["predict", str(folder_run), str(folders / "test"), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 36 and {Path(r["input"]).parent.name for r in rows} == set(SHAPES)
    right = sum(Path(r["input"]).parent.name == r["label"] for r in rows)
    assert right / len(rows) == summary(folder_run)["test"]["accuracy"]  # the same preparation as fit's


def test_one_level_of_class_folders_is_split_by_test_size(runner: CliRunner, tmp_path: Path) -> None:
    root = write_folders(tmp_path / "one", per_class=10, split=False)
    for test_size, n_test in (("6", 6), ("0.2", 6), ("50%", 15)):
        out = tmp_path / f"run-{n_test}-{test_size.strip('%')}"
        result = fit(runner, root, out, "--test-size", test_size, "--epochs", "1")
        assert result.exit_code == 0, result.output
        data = summary(out)["dataset"]
        assert (data["n_train"], data["n_test"], data["layout"]) == (30 - n_test, n_test, "whole")
        assert data["test_split"] == {"test_size": parse_size(test_size), "seed": 0, "n_test": n_test}
    a = load_dataset(root, str(root), Preparation(test_size=6))
    b = load_dataset(root, str(root), Preparation(test_size=6))
    assert np.array_equal(a.test_images, b.test_images)  # the same test images every time, whatever --seed
    assert sorted(np.bincount(a.test_labels).tolist()) == [2, 2, 2]  # each class in proportion


def test_stratified_split_holds_out_each_class_in_proportion() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 15, 5]).astype(np.uint8)
    kept, held = stratified_split(labels, 0.2)
    assert len(held) == 20 and len(kept) == 80 and not set(kept) & set(held)
    assert np.bincount(labels[held], minlength=4).tolist() == [10, 6, 3, 1]


def test_csv_pair_and_single_csv(runner: CliRunner, tmp_path: Path) -> None:
    images, labels = small_images(150)
    test_images, test_labels = small_images(60, seed=1)
    write_csv(tmp_path / "pair" / "train.csv", images, labels)  # Kaggle's header: label,pixel0,...
    write_csv(tmp_path / "pair" / "test.csv", test_images, test_labels, header=False, scale=1 / 255)  # 0-1
    assert fit(runner, tmp_path / "pair", tmp_path / "r1").exit_code == 0
    data = load_dataset(tmp_path / "pair", "pair")
    assert np.array_equal(data.train_images.reshape(-1, 8, 8), images) and np.array_equal(data.test_labels,
                                                                                         test_labels)
    assert np.array_equal(data.test_images.reshape(-1, 8, 8), test_images)  # 0-1 values scaled back exactly
    assert summary(tmp_path / "r1")["test"]["accuracy"] >= 0.9
    one = write_csv(tmp_path / "all.csv", images, labels, label_last=True)  # the label column found by name
    assert fit(runner, one, tmp_path / "r2", "--test-size", "30").exit_code == 0
    assert summary(tmp_path / "r2")["dataset"]["n_test"] == 30


def test_csv_rows_of_non_square_images_need_their_shape(runner: CliRunner, tmp_path: Path) -> None:
    images, labels = small_images(60)
    wide = write_csv(tmp_path / "wide.csv", np.concatenate([images, images], axis=2), labels)  # 8 x 16
    result = fit(runner, wide, tmp_path / "r")
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {wide}: rows of 128 pixels are not square images; give their height and width with "
        "--image-shape H,W\n")
    assert fit(runner, wide, tmp_path / "r", "--image-shape", "8,16").exit_code == 0
    assert summary(tmp_path / "r")["dataset"]["image_shape"] == [8, 16]


def test_npz_archive_like_keras_mnist(runner: CliRunner, tmp_path: Path) -> None:
    images, labels = small_images(150)
    test_images, test_labels = small_images(60, seed=1)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels.astype(np.int64),
             x_test=test_images.reshape(60, -1).astype(np.float32) / 255, y_test=test_labels)
    result = fit(runner, tmp_path / "mnist.npz", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert summary(tmp_path / "r")["dataset"]["format"] == "npz"
    data = load_dataset(tmp_path / "mnist.npz", "x")
    assert np.array_equal(data.test_images.reshape(-1, 8, 8), test_images)


@pytest.mark.parametrize("kind", ["idx", "folders", "csv", "npz"])
def test_eval_works_on_a_set_with_only_test_data(runner: CliRunner, tmp_path: Path, kind: str) -> None:
    """IDX t10k-* only, a test/ folder only, test.csv only, x_test and y_test only."""
    images, labels = small_images(150)
    np.savez(tmp_path / "full.npz", x_train=images, y_train=labels, x_test=images[:60], y_test=labels[:60])
    assert fit(runner, tmp_path / "full.npz", tmp_path / "run").exit_code == 0
    only = tmp_path / "only"
    if kind == "idx":
        write_dataset(only, shape=(8, 8))
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
            (only / name).unlink()
    elif kind == "folders":
        for k in range(3):
            (only / "test" / str(k)).mkdir(parents=True)
            for i in np.flatnonzero(labels[:30] == k):
                Image.fromarray(images[i]).save(only / "test" / str(k) / f"{i}.png")
    elif kind == "csv":
        write_csv(only / "test.csv", images[:30], labels[:30])
    else:
        only = tmp_path / "only.npz"
        np.savez(only, x_test=images[:30], y_test=labels[:30])
    result = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--dataset", str(only), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == (100 if kind == "idx" else 30)
    result = fit(runner, only, tmp_path / "r2")
    assert result.exit_code == 1 and "has only a test split, which is enough for mlptrain eval but not for " \
        "training; give the training images too" in result.stderr


def test_preprocess_none_takes_prepared_images_and_predict_follows_the_run(runner: CliRunner, tmp_path: Path) -> None:
    images, labels = small_images(90)
    for split, part in (("train", slice(0, 60)), ("test", slice(60, 90))):
        for i in range(90)[part]:
            folder = tmp_path / "prepared" / split / f"c{labels[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(folder / f"{i}.png")
    result = fit(runner, tmp_path / "prepared", tmp_path / "r", "--preprocess", "none")
    assert result.exit_code == 0, result.output
    data = load_dataset(tmp_path / "prepared", "p", Preparation(preprocess="none"))
    assert data.image_shape == (8, 8) and np.array_equal(np.sort(data.train_images, axis=0),
                                                         np.sort(images[:60].reshape(60, -1), axis=0))
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "big.png")
    result = runner.invoke(cli, ["predict", str(tmp_path / "r"), str(tmp_path / "big.png")])
    assert result.exit_code == 1 and "the image is 30x30 pixels but the network takes 8x8 pixels" in result.stderr
    result = runner.invoke(cli, ["predict", str(tmp_path / "r"), str(tmp_path / "big.png"), "--preprocess", "mnist"])
    assert result.exit_code == 0  # blank, but predicted: the flag still overrides the run's choice


def test_val_size_takes_a_count_or_a_fraction(runner: CliRunner, tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny", n_train=200)
    from mlptrain.config import build_config, default_init
    from mlptrain.train.trainer import Trainer

    data = load_dataset(tiny, "tiny")
    for given, n_val in (("40", 40), ("0.1", 20), ("15%", 30)):
        result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "1", "--quiet",
                                     "--val-size", given, "--dry-run"])
        assert result.exit_code == 0, result.output
        config = default_init(build_config({"val_size": given, "hidden": [8]}))
        assert len(Trainer(config, data).split.val) == n_val
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--val-size", "1.5"])
    assert result.exit_code == 2 and "expected a count (a whole number such as 5000) or a fraction (such as 0.1 " \
        "or 10%)" in result.stderr


# --- detection ------------------------------------------------------------------------------------------------


def test_a_path_of_no_known_layout_names_every_layout(runner: CliRunner, tmp_path: Path, folder_run: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    result = runner.invoke(cli, ["fit", "--dataset", str(tmp_path / "stuff")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"Error: --dataset: {tmp_path / 'stuff'} holds no data set mlptrain can read; "
                             f"--dataset takes a known data set (mnist, fashion-mnist, kmnist) or a path to: "
                             f"{layouts()}\n")
    for data_format in FORMATS.values():
        assert data_format.layout in result.stderr
    result = runner.invoke(cli, ["eval", str(folder_run), "--dataset", str(tmp_path / "stuff")])
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {tmp_path / 'stuff'} holds no data set mlptrain can read; --dataset takes a known data set (mnist, "
        f"fashion-mnist, kmnist) or a path to: {layouts()}\n")


# --- caches ---------------------------------------------------------------------------------------------------


def test_prepared_images_are_cached_outside_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.data import prepared

    root = write_folders(tmp_path / "shapes", per_class=4)
    before = sorted(root.rglob("*"))
    first = load_dataset(root, "s", Preparation(), tmp_path / "cache")
    assert sorted(root.rglob("*")) == before  # nothing written into the user's folders
    assert not first.details["train"]["cached"]
    monkeypatch.setattr(prepared, "read_image", lambda *a: pytest.fail("decoded again"))
    second = load_dataset(root, "s", Preparation(), tmp_path / "cache")
    assert second.details["train"]["cached"] and np.array_equal(first.train_images, second.train_images)
    monkeypatch.undo()
    other = load_dataset(root, "s", Preparation(image_size=14), tmp_path / "cache")  # another preparation
    assert other.image_shape == (14, 14) and not other.details["train"]["cached"]
    touched = sorted((root / "train" / "ring").iterdir())[0]
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(touched)  # a changed file: prepared afresh
    third = load_dataset(root, "s", Preparation(), tmp_path / "cache")
    assert not third.details["train"]["cached"] and third.details["test"]["cached"]


def test_many_files_are_prepared_in_worker_processes_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.data import prepared

    root = write_folders(tmp_path / "shapes", per_class=8, split=False)
    serial = load_dataset(root, "s")
    monkeypatch.setattr(prepared, "PARALLEL_MIN", 1)
    monkeypatch.setattr(prepared, "CHUNK", 5)
    monkeypatch.setattr(prepared, "available_cores", lambda: 2)
    parallel = load_dataset(root, "s")
    assert np.array_equal(serial.train_images, parallel.train_images)
    assert np.array_equal(serial.test_labels, parallel.test_labels)


# --- malformed inputs: one clear line each ---------------------------------------------------------------------


def _truncated_png(path: Path) -> None:
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])


def malformed(tmp_path: Path, case: str) -> tuple[Path, list[str], str]:
    """A broken data set, the extra fit flags it needs, and the one line fit answers with (after ``Error: ``)."""
    images, labels = small_images(30)
    if case in ("class folder with no images", "unreadable image", "mixed sizes under --preprocess none"):
        root = write_folders(tmp_path / "shapes", per_class=3)
        ring = root / "train" / "ring"
        if case == "class folder with no images":
            for image in ring.iterdir():
                image.unlink()
            (ring / "notes.txt").write_text("not an image")
            return root, [], (f"{ring}: the class folder holds no images (PNG, JPEG, BMP, TIFF, GIF or any image "
                              "Pillow opens); add images or remove it")
        if case == "unreadable image":
            _truncated_png(ring / "ring-001.png")
            return root, [], f"{ring / 'ring-001.png'}: unreadable or truncated image ("
        across = root / "train" / "across"
        return root, ["--preprocess", "none"], (
            f"{across / 'across-001.jpg'} is 64x64 pixels but {across / 'across-000.png'} is 40x40 pixels; with "
            "--preprocess none every image must have one size: resize them, or use --preprocess mnist")
    if case in ("CSV row of the wrong length", "non-numeric pixel", "CSV label out of range", "empty split"):
        path = write_csv(tmp_path / "d" / "train.csv", images, labels)
        write_csv(tmp_path / "d" / "test.csv", images, labels)
        lines = path.read_text().splitlines()
        if case == "CSV row of the wrong length":
            lines[5] = lines[5].rsplit(",", 1)[0]
            message = f"{path} line 6: 64 values, but the rows have 65 (a label and 64 pixels); every row is one " \
                      "image of the same size"
        elif case == "non-numeric pixel":
            lines[3] = lines[3].replace(",", ",abc,", 1).rsplit(",", 1)[0]
            message = (f"{path} line 4, pixel0: 'abc' is not a number; pixel values are numbers from 0 to 255 "
                       "(or 0 to 1)")
        elif case == "CSV label out of range":
            lines[7] = "-1" + lines[7][1:]
            message = (f"{path}: label -1 (line 8) is out of range; labels are class numbers, whole numbers from "
                       "0 to 255")
        else:
            lines = lines[:1]
            message = f"{path}: holds no rows of images (an empty split); add rows, one image per line"
        path.write_text("\n".join(lines) + "\n")
        return tmp_path / "d", [], message
    path = tmp_path / "d.npz"
    if case == "npz label out of range":
        np.savez(path, x_train=images, y_train=labels.astype(np.int64) + 300, x_test=images, y_test=labels)
        return path, [], (f"{path}: y_train: label 300 (image 0) is out of range; labels are class numbers, whole "
                          "numbers from 0 to 255")
    if case == "pickled .npz":
        np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=labels, x_test=images, y_test=labels)
        return path, [], (f"{path}: the archive holds Python objects (a pickle), which mlptrain never loads; save "
                          "plain uint8 or float arrays with np.savez")
    if case == ".npz missing a key":
        np.savez(path, x_train=images, x_test=images, y_test=labels)
        return path, [], (f"{path} lacks y_train (it holds x_test, x_train, y_test); a NumPy archive data set holds "
                          "x_train, y_train, x_test, y_test (x_test and y_test alone: a set to evaluate on)")
    assert case == "test size leaving no training images"
    root = write_folders(tmp_path / "one", per_class=3, split=False)
    return root, ["--test-size", "9"], (f"--test-size 9 holds out 9 of the 9 images of {root}, leaving no training "
                                        "images (an empty split); choose a count from 1 to 8 or a fraction")


MALFORMED = ["class folder with no images", "unreadable image", "mixed sizes under --preprocess none",
             "CSV row of the wrong length", "non-numeric pixel", "CSV label out of range", "npz label out of range",
             "pickled .npz", "empty split", "test size leaving no training images", ".npz missing a key"]


@pytest.mark.parametrize("case", MALFORMED)
def test_each_malformed_input_is_one_clear_line(runner: CliRunner, tmp_path: Path, case: str) -> None:
    dataset, extra, message = malformed(tmp_path, case)
    result = fit(runner, dataset, tmp_path / "run", *extra)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_an_unreadable_image_in_a_worker_process_is_the_same_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.data import prepared
    from mlptrain.errors import DataError

    root, _, message = malformed(tmp_path, "unreadable image")
    monkeypatch.setattr(prepared, "PARALLEL_MIN", 1)
    monkeypatch.setattr(prepared, "CHUNK", 2)
    monkeypatch.setattr(prepared, "available_cores", lambda: 2)
    with pytest.raises(DataError) as info:
        load_dataset(root, "s")
    assert str(info.value).startswith(message)


# --- data import ----------------------------------------------------------------------------------------------


def test_data_import_writes_any_set_prepared_as_idx_with_class_names(runner: CliRunner, folders: Path,
                                                                     tmp_path: Path) -> None:
    result = runner.invoke(cli, ["data", "import", str(folders), "--out", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (f"{folders}: 72 training and 36 test images, 28x28 pixels, 3 classes, "
                                             f"written to {tmp_path / 'idx'}:")
    assert (tmp_path / "idx" / "classes.txt").read_text() == "across\ndown\nring\n"
    imported, original = load_dataset(tmp_path / "idx", "idx"), load_dataset(folders, "f")
    assert FORMATS["idx"].matches(tmp_path / "idx") and imported.class_names == original.class_names
    for split in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(imported, split), getattr(original, split))
    again = runner.invoke(cli, ["data", "import", str(folders), "--out", str(tmp_path / "idx")])
    assert again.exit_code == 1 and again.stderr.startswith(f"Error: {tmp_path / 'idx'} already holds "
                                                            "train-images-idx3-ubyte.gz")
    images, labels = small_images(50)
    one = write_csv(tmp_path / "one.csv", images, labels)
    result = runner.invoke(cli, ["data", "import", str(one), "--test-size", "10", "--out", str(tmp_path / "csv")])
    assert result.exit_code == 0, result.output
    assert len(load_dataset(tmp_path / "csv", "csv").test_labels) == 10
    assert (tmp_path / "csv" / "classes.txt").read_text() == "0\n1\n2\n"


def test_a_sweep_over_class_folders_prepares_them_once(runner: CliRunner, folders: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep prepares the images into the cache before the trials start; the trials read them from there."""
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(folders), "hidden": [8], "epochs": 1, "val_size": 6,
                                         "batch_size": 16}, "grid": {"lr": [0.1]}, "seeds": 2}))
    cache = tmp_path / "cache"
    result = runner.invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--workers", "1", "--quiet",
                                 "--data-dir", str(cache)])
    assert result.exit_code == 0, result.output
    trials = [json.loads(line) for line in (tmp_path / "sw" / "results.jsonl").read_text().splitlines()]
    assert [t["status"] for t in trials] == ["complete", "complete"]
    for trial in ("seed=0", "seed=1"):
        data = summary(tmp_path / "sw" / trial)["dataset"]
        assert data["format"] == "folders" and data["train"]["cached"] and data["test"]["cached"]
