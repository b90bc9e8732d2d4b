"""``mlptrain predict``: preprocessing of photo-like digits, every kind of input, every bad input, the outputs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from mlptrain.cli import cli
from mlptrain.data.datasets import DATASETS
from mlptrain.data.idx import read_idx
from mlptrain.data.prepare import mnist_style
from mlptrain.infer.predict import load_model, probabilities

from synthetic import write_dataset

FIT_FAST = ["--hidden", "16", "--epochs", "3", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]


def photo_of_a_seven(size: int = 200, offset: tuple[int, int] = (-45, 30), seed: int = 0) -> np.ndarray:
    """A dark '7' drawn with a thick pen on light, unevenly lit, noisy paper, off-centre: uint8 (size, size)."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    dx, dy = offset
    s = size / 200
    points = [(70 * s + dx, 50 * s + dy), (130 * s + dx, 50 * s + dy), (90 * s + dx, 150 * s + dy)]
    draw.line(points, fill=0, width=int(12 * s), joint="curve")
    rng = np.random.default_rng(seed)
    paper = np.asarray(image, np.float32) * 0.75 + 40  # ink at 40, paper at 231
    paper += np.linspace(-25, 15, size)[None, :]  # light falls off to one side
    paper += rng.normal(0, 8, paper.shape)
    return np.clip(paper, 0, 255).astype(np.uint8)


def ink_bbox(image: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows, cols = np.nonzero(image > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


# --- preprocessing -------------------------------------------------------------------


def test_a_photographed_digit_comes_out_like_mnist() -> None:
    """Dark on light, off-centre, noisy, 200x200 -> white on black, 20x20 box, mass at the centre of 28x28."""
    out, blank = mnist_style(photo_of_a_seven() / 255.0, (28, 28))
    assert not blank and out.shape == (28, 28) and out.dtype == np.float32
    height, width = ink_bbox(out)
    assert max(height, width) in (20, 21) and min(height, width) <= 20  # Lanczos may add a faint pixel
    com = centre_of_mass(out)
    assert abs(com[0] - 14.0) <= 0.5 and abs(com[1] - 14.0) <= 0.5  # where MNIST's own images have it, on average
    assert out.max() == pytest.approx(1.0, abs=0.02)
    corners = [out[:5, :5], out[:5, -5:], out[-5:, :5], out[-5:, -5:]]
    assert max(c.max() for c in corners) == 0.0  # paper, light gradient and noise are gone
    assert out[out < 0.05].sum() < 0.01 * out.sum()  # no haze of faint noise around the ink
    assert np.array_equal(out, np.rint(out * 255).astype(np.float32) * np.float32(1 / 255))  # uint8 steps
    # The top bar of the 7 is bright at the top of the box, the stem reaches the bottom.
    top = np.nonzero(out.max(axis=1) > 0.5)[0][0]
    assert out[top].sum() > 4 * out[top + 12].sum()


def test_white_on_black_is_not_inverted_and_other_sizes_scale() -> None:
    dark_paper = 255 - photo_of_a_seven()
    out, _ = mnist_style(dark_paper / 255.0, (28, 28))
    same, _ = mnist_style(photo_of_a_seven() / 255.0, (28, 28))
    assert np.abs(out - same).max() < 0.1  # either way round, the same digit
    small, _ = mnist_style(photo_of_a_seven() / 255.0, (14, 14))
    assert max(ink_bbox(small)) in (10, 11)  # 20/28 of 14


def test_a_blank_image_is_reported_blank() -> None:
    rng = np.random.default_rng(0)
    paper = np.clip(230 + rng.normal(0, 6, (50, 60)), 0, 255) / 255.0
    out, blank = mnist_style(paper, (28, 28))
    assert blank and not out.any()


# --- a run to predict with -----------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    tiny = write_dataset(root / "tiny")
    (tiny / "classes.txt").write_text("top band\nmiddle band\nbottom band\n")
    out = root / "run"
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def tiny_test_images(run: Path) -> np.ndarray:
    dataset = Path(json.loads((run / "summary.json").read_text())["dataset"]["directory"])
    return read_idx(dataset / "t10k-images-idx3-ubyte.gz")


def predictions(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_test_set_as_idx_npy_and_floats_gives_the_fits_accuracy(runner: CliRunner, run: Path,
                                                                     tmp_path: Path) -> None:
    images = tiny_test_images(run)
    dataset = Path(json.loads((run / "summary.json").read_text())["dataset"]["directory"])
    labels = read_idx(dataset / "t10k-labels-idx1-ubyte.gz")
    np.save(tmp_path / "square.npy", images)
    np.save(tmp_path / "flat.npy", images.reshape(len(images), -1))
    np.save(tmp_path / "floats.npy", images.astype(np.float32) / 255)
    outputs = {}
    for name in ("square.npy", "flat.npy", "floats.npy"):
        result = runner.invoke(cli, ["predict", str(run), str(tmp_path / name), "--json"])
        assert result.exit_code == 0, result.output
        outputs[name] = predictions(result)
    result = runner.invoke(cli, ["predict", str(run), str(dataset / "t10k-images-idx3-ubyte.gz"), "--json"])
    outputs["idx"] = predictions(result)
    classes = {name: [row["predicted"] for row in rows] for name, rows in outputs.items()}
    assert classes["square.npy"] == classes["flat.npy"] == classes["floats.npy"] == classes["idx"]
    accuracy = float(np.mean(np.array(classes["idx"]) == labels))
    assert accuracy == json.loads((run / "summary.json").read_text())["test"]["accuracy"]
    assert [row["index"] for row in outputs["idx"]] == list(range(len(images)))


def test_json_fields_and_class_names_from_classes_txt(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", tiny_test_images(run)[:2])
    result = runner.invoke(cli, ["predict", str(run), str(tmp_path / "two.npy"), "--json", "--top-k", "3"])
    assert result.exit_code == 0 and result.stderr == ""
    rows = predictions(result)
    probs = probabilities(load_model(run).net, tiny_test_images(run)[:2].reshape(2, -1))
    for i, row in enumerate(rows):
        assert set(row) == {"input", "index", "predicted", "label", "probability", "top_k"}
        assert row["input"] == str(tmp_path / "two.npy") and row["index"] == i
        assert row["predicted"] == int(probs[i].argmax()) and row["probability"] == pytest.approx(probs[i].max())
        assert row["label"] == ["top band", "middle band", "bottom band"][row["predicted"]]
        assert [t["class"] for t in row["top_k"]] == list(np.argsort(-probs[i], kind="stable"))
        assert sum(t["probability"] for t in row["top_k"]) == pytest.approx(1.0, abs=1e-6)


def test_table_and_csv(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", tiny_test_images(run)[:2])
    rows = predictions(runner.invoke(cli, ["predict", str(run), str(tmp_path / "two.npy"), "--json", "--top-k", "2"]))
    name = str(tmp_path / "two.npy")
    table = runner.invoke(cli, ["predict", str(run), name, "--top-k", "2"])
    width, label = len(name) + 3, 11
    expected = [f"{'input':<{width}}  class  {'label':<{label}}  probability  then (top 2)"] + [
        f"{name + f'[{i}]':<{width}}  {r['predicted']:>5}  {r['label']:<{label}}  {r['probability']:>11.1%}  "
        f"{r['top_k'][1]['label']} {r['top_k'][1]['probability']:.1%}" for i, r in enumerate(rows)]
    assert table.exit_code == 0 and table.stdout.splitlines() == expected
    csv = runner.invoke(cli, ["predict", str(run), name, "--csv"]).stdout.splitlines()
    assert csv[0] == "input,index,predicted,label,probability"
    assert csv[1] == f"{name},0,{rows[0]['predicted']},{rows[0]['label']},{rows[0]['probability']:.6g}"


def test_usage_errors(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", tiny_test_images(run)[:2])
    result = runner.invoke(cli, ["predict", str(run), str(tmp_path / "two.npy"), "--top-k", "4"])
    assert result.exit_code == 2 and "the network has 3 classes; choose 1 to 3" in result.stderr
    result = runner.invoke(cli, ["predict", str(run), str(tmp_path / "two.npy"), "--json", "--csv"])
    assert result.exit_code == 2 and "choose one of --json and --csv" in result.stderr
    result = runner.invoke(cli, ["predict", str(tmp_path / "no-run"), str(tmp_path / "two.npy")])
    assert result.exit_code == 1 and result.stderr == f"Error: run directory {tmp_path / 'no-run'} does not exist\n"


def save(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_images_are_preprocessed_and_saved_as_seen(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    photo = save(photo_of_a_seven(), tmp_path / "seven.jpg")
    seen = tmp_path / "seen"
    result = runner.invoke(cli, ["predict", str(run), str(photo), "--json", "--save-preprocessed", str(seen)])
    assert result.exit_code == 0, result.output
    saved = np.asarray(Image.open(seen / "00000-seven.png")).astype(np.float32) * np.float32(1 / 255)
    expected, _ = mnist_style(np.asarray(Image.open(photo), np.float32) / 255.0, (8, 8))
    assert np.array_equal(saved, expected) and saved.any()
    probs = probabilities(load_model(run).net, expected.reshape(1, -1))
    assert predictions(result)[0]["probability"] == pytest.approx(float(probs.max()))
    assert "index" not in predictions(result)[0]


def test_preprocess_none_takes_images_of_the_right_size_only(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    image = tiny_test_images(run)[0]
    good = save(image, tmp_path / "good.png")
    np.save(tmp_path / "one.npy", image[None])
    from_png = predictions(runner.invoke(cli, ["predict", str(run), str(good), "--json", "--preprocess", "none"]))
    from_npy = predictions(runner.invoke(cli, ["predict", str(run), str(tmp_path / "one.npy"), "--json"]))
    assert from_png[0]["top_k"] == from_npy[0]["top_k"]
    big = save(photo_of_a_seven(), tmp_path / "big.png")
    result = runner.invoke(cli, ["predict", str(run), str(big), "--preprocess", "none"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"Error: {big}: the image is 200x200 pixels but the network takes 8x8 pixels; "
                             "resize it, or use --preprocess mnist\n")


def test_a_directory_sorted_non_images_skipped_and_a_blank_warned(runner: CliRunner, run: Path,
                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    save(photo_of_a_seven(seed=1), folder / "b.png")
    save(photo_of_a_seven(seed=2), folder / "a.bmp")
    save(np.full((30, 30), 250, np.uint8), folder / "c-blank.gif")
    (folder / "notes.txt").write_text("not a picture")
    result = runner.invoke(cli, ["predict", str(run), str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert [row["input"] for row in predictions(result)] == [str(folder / n) for n in ("a.bmp", "b.png", "c-blank.gif")]
    assert result.stderr.splitlines() == [
        f"note: skipped {folder / 'notes.txt'}: not an image file",
        f"warning: {folder / 'c-blank.gif'}: no ink found (a blank image); predicted anyway",
    ]


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a bad input, the message predict gives for it)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("this is text, not a PNG")
    png = tmp_path / "whole.png"
    save(photo_of_a_seven(), png)
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    np.save(tmp_path / "shape.npy", np.zeros((3, 7, 7), np.uint8))
    np.save(tmp_path / "ints.npy", np.zeros((3, 64), np.int64))
    np.save(tmp_path / "range.npy", np.full((3, 64), 3.0, np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "raw.npy").write_bytes(pickle.dumps([1, 2, 3]))
    p = {name: tmp_path / name for name in ("empty", "notes.png", "cut.png", "shape.npy", "ints.npy", "range.npy",
                                            "objects.npy", "raw.npy", "missing.png")}
    return {
        "empty directory": (p["empty"], f"{p['empty']}: the directory holds no image files; give a PNG, JPEG, "
                            "BMP, GIF, TIFF or PGM file, or name the files"),
        "not an image": (p["notes.png"], f"{p['notes.png']}: not an image Pillow can read; give a PNG, JPEG, BMP, "
                         "GIF, TIFF or PGM file"),
        "truncated": (p["cut.png"], f"{p['cut.png']}: unreadable or truncated image ("),
        "wrong shape": (p["shape.npy"], f"{p['shape.npy']}: an array of shape (3, 7, 7), but the network takes "
                        "(N, 8, 8) or (N, 64); reshape it"),
        "wrong dtype": (p["ints.npy"], f"{p['ints.npy']}: an array of int64; give uint8 (0-255) or floats (0-1)"),
        "out of range": (p["range.npy"], f"{p['range.npy']}: float values outside [0, 1] (or NaN); scale them to "
                         "[0, 1] like training did"),
        "pickled array": (p["objects.npy"], f"{p['objects.npy']}: the array holds Python objects (a pickle), which "
                          "predict never loads; save a plain uint8 or float array with np.save"),
        "a pickle named .npy": (p["raw.npy"], f"{p['raw.npy']}: the array holds Python objects (a pickle), which "
                                "predict never loads; save a plain uint8 or float array with np.save"),
        "missing": (p["missing.png"], f"{p['missing.png']}: no such file or directory; check the path"),
    }


BAD_CASES = ["empty directory", "not an image", "truncated", "wrong shape", "wrong dtype", "out of range",
             "pickled array", "a pickle named .npy", "missing"]


def test_the_bad_cases_are_all_listed(tmp_path: Path) -> None:
    assert list(bad_inputs(tmp_path)) == BAD_CASES


@pytest.mark.parametrize("case", BAD_CASES)
def test_each_bad_input_alone_is_one_error_line(runner: CliRunner, run: Path, tmp_path: Path, case: str) -> None:
    path, message = bad_inputs(tmp_path)[case]
    result = runner.invoke(cli, ["predict", str(run), str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_bad_inputs_among_good_ones_are_warnings_and_exit_1(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    bad = bad_inputs(tmp_path)
    np.save(tmp_path / "good.npy", tiny_test_images(run)[:2])
    paths = [str(tmp_path / "good.npy")] + [str(path) for path, _ in bad.values()]
    result = runner.invoke(cli, ["predict", str(run), *paths, "--json"])
    assert result.exit_code == 1
    assert [row["index"] for row in predictions(result)] == [0, 1]
    lines = result.stderr.splitlines()
    assert len(lines) == len(bad) + 1
    for line, (_, message) in zip(lines, bad.values()):
        assert line.startswith(f"warning: {message}")
    assert lines[-1] == (f"Error: {len(bad)} input(s) could not be read (see the warnings above); "
                         "the other 2 image(s) were predicted")
    result = runner.invoke(cli, ["predict", str(run), str(bad["missing"][0]), str(bad["empty directory"][0])])
    assert result.exit_code == 1 and result.stderr.splitlines()[-1] == "Error: none of the 2 inputs could be read"


@pytest.mark.parametrize("limit, what", [(6000, "warning"), (1000, "error")])
def test_a_decompression_bomb_is_refused(runner: CliRunner, run: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, limit: int, what: str) -> None:
    """Pillow warns above MAX_IMAGE_PIXELS and raises above twice that: both are refused, by name."""
    bomb = save(np.full((100, 100), 255, np.uint8), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    result = runner.invoke(cli, ["predict", str(run), str(bomb)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {bomb}: refused as a possible decompression bomb: Image size (10000 "
                                    "pixels) exceeds limit of ")
    assert result.stderr.endswith(f"(Pillow's limit, Image.MAX_IMAGE_PIXELS = {limit}); scale the image down first\n")


def test_runs_without_stored_class_names_fall_back(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    """Weights from before class names were stored: the table's names for a known data set, else numbers."""
    with np.load(run / "weights.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta_class_names"}
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "weights.npz", **arrays)
    assert load_model(old).class_names == ("0", "1", "2")
    arrays["meta_dataset"] = np.array("fashion-mnist")
    np.savez(old / "weights.npz", **{**arrays, "W1": arrays["W1"][:, :1].repeat(10, 1),
                                      "b1": arrays["b1"][:1].repeat(10)})
    assert load_model(old).class_names == DATASETS["fashion-mnist"].class_names


def test_class_names_are_stored_without_touching_the_weights(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "plain")
    assert runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(tmp_path / "r")]).exit_code == 0
    with np.load(tmp_path / "r" / "weights.npz") as plain, np.load(run / "weights.npz") as named:
        assert list(named["meta_class_names"]) == ["top band", "middle band", "bottom band"]
        assert list(plain["meta_class_names"]) == ["0", "1", "2"]
        for key in ("W0", "b0", "W1", "b1"):
            assert plain[key].tobytes() == named[key].tobytes()  # same data, seed and config: same weights
    report = runner.invoke(cli, ["eval", str(run)]).stdout.splitlines()
    assert report[3].endswith("  top band") and report[5].endswith("  bottom band")
    (tiny / "classes.txt").write_text("one\ntwo\n")
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(tmp_path / "r2")])
    assert result.exit_code == 1 and "classes.txt names 2 classes but the labels have 3" in result.stderr


def test_kmnist_class_order_is_the_papers() -> None:
    names = DATASETS["kmnist"].class_names
    assert names == ("o (お)", "ki (き)", "su (す)", "tsu (つ)", "na (な)", "ha (は)", "ma (ま)", "ya (や)",
                     "re (れ)", "wo (を)")
    assert DATASETS["mnist"].class_names == tuple("0123456789")
    assert DATASETS["fashion-mnist"].class_names[9] == "Ankle boot"


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    upright = photo_of_a_seven()
    image = Image.fromarray(np.rot90(upright).copy())  # stored turned 90 degrees anticlockwise ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with the tag that says: turn it 90 degrees clockwise to show it
    image.save(tmp_path / "phone.png", exif=exif)
    from mlptrain.data.images import read_image

    read = read_image(tmp_path / "phone.png", "phone.png")
    assert np.array_equal(read, upright.astype(np.float32) * np.float32(1 / 255))


def test_predict_imports_neither_plotting_nor_progress_bars_nor_downloads(run: Path, tmp_path: Path) -> None:
    """The whole command stays quick: what fit, plot and data download need is not imported (-X importtime)."""
    import subprocess
    import sys

    photo = save(photo_of_a_seven(), tmp_path / "seven.png")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlptrain", "predict", str(run), str(photo)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "PIL" in imported and "numpy" in imported
    assert not imported & {"matplotlib", "tqdm", "requests", "urllib3", "yaml", "onnx", "dask"}
    # The other commands' modules load only when they run (cli.common.Group's lazy commands). importtime
    # does not see importlib.import_module, so ask sys.modules at the end of an in-process run.
    script = ("import sys\nfrom mlptrain.cli.main import cli\n"
              f"cli.main(['predict', {str(run)!r}, {str(photo)!r}], standalone_mode=False)\n"
              "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.splitlines()[-1].split())  # the last line: after the table predict printed
    assert "mlptrain.cli.predict" in modules
    assert not modules & {"mlptrain.cli.fit", "mlptrain.cli.sweep", "mlptrain.cli.tune", "mlptrain.train.trainer"}


@pytest.mark.parametrize("kind", ["16-bit", "ink in the alpha channel", "palette", "pgm", "tiff"])
def test_image_modes_read_as_the_same_grayscale(tmp_path: Path, kind: str) -> None:
    from mlptrain.data.images import read_image

    gray = photo_of_a_seven()
    path = tmp_path / ("x.pgm" if kind == "pgm" else "x.tiff" if kind == "tiff" else "x.png")
    if kind == "16-bit":
        Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    elif kind == "ink in the alpha channel":  # black ink on a transparent background
        rgba = np.zeros((*gray.shape, 4), np.uint8)
        rgba[..., 3] = 255 - gray
        Image.fromarray(rgba).save(path)
    elif kind == "palette":
        Image.fromarray(gray).convert("P").save(path)
    else:
        Image.fromarray(gray).save(path)
    expected = gray.astype(np.float32) / 255
    assert np.abs(read_image(path, str(path)) - expected).max() <= 1.5 / 255


def test_uint8_rows_and_the_same_rows_as_floats_give_the_same_probabilities() -> None:
    from mlptrain.nn.initializers import get_initializer
    from mlptrain.nn.network import init_network

    net = init_network([16, 12, 3], "relu", get_initializer("he-normal"), np.random.default_rng(0))
    rows = np.random.default_rng(1).integers(0, 256, (20, 16), dtype=np.uint8)
    floats = rows.astype(np.float32) * np.float32(1 / 255)  # as read_inputs gives a float .npy
    expected = probabilities(net, rows, chunk=8)
    np.testing.assert_array_equal(probabilities(net, floats, chunk=8), expected)  # used in place
    np.testing.assert_array_equal(probabilities(net, floats.astype(np.float64), chunk=8), expected)  # converted
    np.testing.assert_array_equal(probabilities(net, np.asfortranarray(floats), chunk=8), expected)  # copied


def test_the_chunk_queue_hands_out_every_start_once_across_threads() -> None:
    import threading

    from mlptrain.infer.predict import _ChunkQueue

    queue = _ChunkQueue(10_007, 3)
    taken: list[list[int]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda mine=mine: mine.extend(queue)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(queue) == 3336
    assert sorted(s for mine in taken for s in mine) == list(range(0, 10_007, 3))


@pytest.mark.parametrize("n", [0, 1, 7, 64, 65])
def test_worker_threads_give_the_same_probabilities_bit_for_bit(n: int) -> None:
    from mlptrain.nn.initializers import get_initializer
    from mlptrain.nn.network import init_network
    from mlptrain.threads import blas_threads

    net = init_network([16, 12, 12, 3], "relu", get_initializer("he-normal"), np.random.default_rng(0))
    rows = np.random.default_rng(1).integers(0, 256, (n, 16), dtype=np.uint8)
    with blas_threads(1):
        one = probabilities(net, rows, chunk=8)
        for workers in (2, 3):
            np.testing.assert_array_equal(probabilities(net, rows, chunk=8, workers=workers), one)
    assert one.shape == (n, 3) and (n == 0 or np.allclose(one.sum(axis=1), 1, atol=1e-6))


# --- fixes in the shared preparation -------------------------------------------------------------------


def test_the_centre_of_mass_lands_where_mnists_does() -> None:
    """MNIST's images have their centre of mass at (13.996, 14.007) on average, not at 13.5."""
    centres = []
    for seed, offset in enumerate([(-45, 30), (20, -10), (0, 0), (35, 25), (-20, -30), (10, 40)]):
        out, _ = mnist_style(photo_of_a_seven(offset=offset, seed=seed) / 255.0, (28, 28))
        centres.append(centre_of_mass(out))
    mean = np.mean(centres, axis=0)
    assert np.abs(mean - 14.0).max() < 0.25, mean


def test_a_speck_on_blank_paper_is_blank_not_a_solid_block() -> None:
    rng = np.random.default_rng(0)
    paper = np.clip(230 + rng.normal(0, 6, (200, 200)), 0, 255)
    paper[120:122, 60:62] = 30  # a 2x2 speck of dirt
    out, blank = mnist_style(paper / 255.0, (28, 28))
    assert blank and not out.any()


def test_a_float_tiff_in_0_1_reads_like_the_8_bit_image(tmp_path: Path) -> None:
    from mlptrain.data.images import read_image

    gray = photo_of_a_seven()
    Image.fromarray(gray.astype(np.float32) / 255).save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    read = read_image(tmp_path / "float.tif", "float.tif")
    assert np.abs(read - gray / 255.0).max() < 1e-6


def test_files_pillow_cannot_open_are_skipped_in_a_directory(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    save(photo_of_a_seven(), folder / "a.png")
    (folder / "b.pdf").write_bytes(b"%PDF-1.4 not an image")  # Pillow writes PDFs but cannot read them
    (folder / "c.h5").write_bytes(b"\x89HDF\r\n\x1a\n")  # a stub format: identified, never decoded
    result = runner.invoke(cli, ["predict", str(run), str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert [row["input"] for row in predictions(result)] == [str(folder / "a.png")]
    assert result.stderr.splitlines() == [f"note: skipped {folder / 'b.pdf'}: not an image file",
                                          f"note: skipped {folder / 'c.h5'}: not an image file"]


def test_csv_has_no_header_when_every_input_failed(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["predict", str(run), str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--csv"])
    assert result.exit_code == 1 and result.stdout == ""


def test_an_empty_array_is_told_it_has_no_rows_not_to_reshape(runner: CliRunner, run: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "empty.npy", np.zeros((0, 64), np.uint8))
    result = runner.invoke(cli, ["predict", str(run), str(tmp_path / "empty.npy")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'empty.npy'}: an array of shape (0, 64) holds no images; give at " \
                            "least one row\n"
