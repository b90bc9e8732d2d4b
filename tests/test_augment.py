"""Data augmentation: the table, the resampling, determinism, and where it is (and is not) applied.

That a resumed augmenting run continues bit for bit is tested with the other resume cases, in
test_training.py (``test_restored_trainer_continues_exactly``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import FIELDS, build_config, default_init
from mlptrain.data import augment
from mlptrain.data.augment import AUGMENTATIONS, augment_batch, batch_rng, canonical, parse_augment, resample
from mlptrain.data.loading import load_dataset
from mlptrain.errors import ConfigError
from mlptrain.train.trainer import Trainer, fit, seed_streams

from synthetic import write_dataset

SEED = np.random.SeedSequence(7)


def digits(n: int = 6, size: int = 28) -> np.ndarray:
    """uint8 images ``(n, size*size)``: a bright off-centre bar each, well inside the frame."""
    images = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        images[i, 8 + i % 4:18, 10 + i % 3:14] = 200 + i
    return images.reshape(n, -1)


def run(images: np.ndarray, specs: tuple[str, ...], step: int = 0, size: int = 28) -> np.ndarray:
    out = np.empty(images.shape, np.float32)
    return augment_batch(images, (size, size), specs, batch_rng(SEED, step), out)


# --- the table and the config key ----------------------------------------------------------


def test_items_are_written_canonically_with_every_parameter() -> None:
    assert parse_augment("affine,elastic:alpha=30") == (
        "affine:rotate=10:scale=0.1:shear=10:translate=2", "elastic:alpha=30:sigma=4",
    )
    assert parse_augment([{"elastic": {"sigma": 5}}, "shift:pixels=3", {"hflip": None}]) == (
        "elastic:alpha=34:sigma=5", "shift:pixels=3", "hflip:probability=0.5",
    )
    assert parse_augment("") == parse_augment([]) == ()
    assert parse_augment(list(parse_augment("affine,shift"))) == parse_augment("affine,shift")  # round trip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("spin", "'spin' is not one of them"),
        ("elastic:alpha=x", "elastic's alpha to be a number from 0 to 1000"),
        ("shift:pixels=1.5", "shift's pixels to be a whole number from 1 to 20"),
        ("affine:turn=3", "affine's parameters to be among rotate, scale, shear, translate"),
        ("elastic:alpha", "parameters written key=value"),
        ("shift,shift:pixels=3", "shift is repeated"),
        (None, "nothing (an empty value)"),
        (3, "a list of augmentations"),
    ],
)
def test_bad_augment_values_are_refused(value, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid augment") as caught:
        build_config({"augment": value})
    assert message in str(caught.value)


def test_hflip_is_refused_for_digits_and_allowed_for_clothes() -> None:
    for dataset in ("mnist", "kmnist"):
        with pytest.raises(ConfigError, match=f"changes {dataset}'s classes"):
            build_config({"dataset": dataset, "augment": "hflip"})
    assert build_config({"dataset": "fashion-mnist", "augment": "hflip"}).augment == ("hflip:probability=0.5",)


def test_the_flag_help_names_every_augmentation() -> None:
    for name in AUGMENTATIONS:
        assert name in FIELDS["augment"].help


# --- the resampling ------------------------------------------------------------------------


def test_resample_matches_bilinear_interpolation_by_hand() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 5, 6), dtype=np.uint8)
    rows = rng.uniform(-3, 8, images.shape).astype(np.float32)
    cols = rng.uniform(-3, 9, images.shape).astype(np.float32)

    def pixel(i: int, y: int, x: int) -> float:
        return float(images[i, y, x]) if 0 <= y < 5 and 0 <= x < 6 else 0.0

    expected = np.zeros(images.shape)
    for i, y, x in np.ndindex(*images.shape):
        r, c = float(rows[i, y, x]), float(cols[i, y, x])
        y0, x0 = int(np.floor(r)), int(np.floor(c))
        a, b = r - y0, c - x0
        expected[i, y, x] = ((1 - a) * ((1 - b) * pixel(i, y0, x0) + b * pixel(i, y0, x0 + 1))
                             + a * ((1 - b) * pixel(i, y0 + 1, x0) + b * pixel(i, y0 + 1, x0 + 1))) / 255
    np.testing.assert_allclose(resample(images, rows, cols), expected, atol=1e-6)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_every_augmentation_keeps_the_shape_and_the_range(name: str) -> None:
    images = digits(40)  # more than one CHUNK
    out = run(images, (canonical(name, {}),))
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.5
    assert not np.array_equal(out, images / 255), f"{name} changed nothing"


@pytest.mark.parametrize(
    "spec",
    ["affine:rotate=0:scale=0:shear=0:translate=0", "elastic:alpha=0:sigma=4", "hflip:probability=0"],
)
def test_a_zero_strength_augmentation_is_the_identity(spec: str) -> None:
    images = digits()
    np.testing.assert_allclose(run(images, (spec,)), images / 255, atol=1e-6)


def test_shift_moves_whole_pixels_and_keeps_the_ink() -> None:
    images = digits(20)
    out = run(images, ("shift:pixels=3",))
    assert np.all(np.isin(np.round(out * 255, 3), np.unique(images)))  # no blurring: only the original values
    np.testing.assert_allclose(out.sum(axis=1), images.sum(axis=1) / 255, rtol=1e-5)  # the bar stays inside


def test_hflip_mirrors_left_to_right() -> None:
    images = digits()
    out = run(images, ("hflip:probability=1",))
    np.testing.assert_allclose(out.reshape(-1, 28, 28), images.reshape(-1, 28, 28)[:, :, ::-1] / 255, atol=1e-6)


def test_elastic_moves_pixels_by_about_a_pixel_with_the_papers_settings() -> None:
    images = digits(32)
    centre = np.arange(28, dtype=np.float32)
    out = run(images, ("elastic:alpha=34:sigma=4",)).reshape(-1, 28, 28)
    ink = images.reshape(-1, 28, 28) / 255
    moved = np.abs((out.sum(1) * centre).sum(1) / out.sum((1, 2)) - (ink.sum(1) * centre).sum(1) / ink.sum((1, 2)))
    assert 0.05 < np.median(moved) < 3  # a wobble, not a jump across the frame


@pytest.mark.parametrize("after", ["affine:rotate=15:scale=0.1:shear=10:translate=2", "shift:pixels=3",
                                   "hflip:probability=1"])
def test_elastic_listed_first_distorts_the_image_and_the_next_one_moves_the_result(after: str) -> None:
    """``elastic,X``: X samples elastic's output, so each pixel takes elastic's displacement at the point X
    samples (read between pixels, bilinearly), not at the pixel's own place."""
    n, size, elastic = 3, 28, "elastic:alpha=34:sigma=4"
    both = augment._sampling_grid(n, (size, size), augment._warps_last_first((elastic, after)),
                                  np.random.default_rng(5))
    rng = np.random.default_rng(5)  # the same draws, one map at a time: the last listed is drawn first
    moved = augment._sampling_grid(n, (size, size), augment._warps_last_first((after,)), rng)
    warped = augment._sampling_grid(n, (size, size), augment._warps_last_first((elastic,)), rng)
    pixels = np.mgrid[:size, :size]

    def displacement(axis: int, i: int, r: float, c: float) -> float:  # elastic's, edge values beyond the frame
        r, c = min(max(r, 0.0), size - 1.0), min(max(c, 0.0), size - 1.0)
        y0, x0 = min(int(r), size - 2), min(int(c), size - 2)
        field = warped[axis][i].astype(np.float64) - pixels[axis]
        a, b = r - y0, c - x0
        return ((1 - a) * ((1 - b) * field[y0, x0] + b * field[y0, x0 + 1])
                + a * ((1 - b) * field[y0 + 1, x0] + b * field[y0 + 1, x0 + 1]))

    for axis in (0, 1):
        expected = np.array([moved[axis][i, y, x] + displacement(axis, i, moved[0][i, y, x], moved[1][i, y, x])
                             for i, y, x in np.ndindex(n, size, size)]).reshape(n, size, size)
        np.testing.assert_allclose(both[axis], expected, atol=2e-4)
    assert np.abs(warped[0] - pixels[0]).max() > 1  # a displacement that matters where it is read


def test_the_same_seed_and_step_give_the_same_batch() -> None:
    images, specs = digits(20), ("affine:rotate=15:scale=0.1:shear=5:translate=2", "elastic:alpha=34:sigma=4")
    np.testing.assert_array_equal(run(images, specs, step=5), run(images, specs, step=5))
    assert not np.array_equal(run(images, specs, step=5), run(images, specs, step=6))
    other = augment_batch(images, (28, 28), specs, batch_rng(np.random.SeedSequence(8), 5),
                          np.empty(images.shape, np.float32))
    assert not np.array_equal(run(images, specs, step=5), other)


def test_a_new_seed_stream_leaves_the_old_ones_alone() -> None:
    old = np.random.SeedSequence(3).spawn(5)
    for a, b in zip(old, seed_streams(3)):
        assert a.generate_state(4).tolist() == b.generate_state(4).tolist()


# --- in the trainer ------------------------------------------------------------------------


@pytest.fixture
def square_data(tmp_path: Path):
    return load_dataset(write_dataset(tmp_path / "tiny", shape=(8, 8)), "tiny")


def config(**values):
    base = {"dataset": "tiny", "hidden": [16], "epochs": 3, "val_size": 30, "batch_size": 32, "lr": 0.1}
    return default_init(build_config(base | values))


def test_augmentation_touches_the_training_batches_only(square_data, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = augment.augment_batch

    def counted(images, *args):
        calls.append(len(images))
        return real(images, *args)

    monkeypatch.setattr("mlptrain.train.batches.augment_batch", counted)
    trainer = Trainer(config(augment="shift:pixels=1"), square_data)
    probe_before = trainer.probe_batch()[0].copy()
    trainer.check_init()
    assert calls == []
    trainer.run_epoch()
    assert sum(calls) == len(trainer.split.train)  # every training image once; not validation, not the probe
    np.testing.assert_array_equal(trainer.probe_batch()[0], probe_before)  # the probe is the raw images


def test_augmented_training_differs_and_evaluation_does_not_augment(square_data) -> None:
    plain = fit(config(), square_data)
    shifted = fit(config(augment="affine"), square_data)
    assert not np.array_equal(plain.net.weights[0], shifted.net.weights[0])
    from mlptrain.train.evaluate import evaluate

    x, y = square_data.test_images, square_data.test_labels
    net = shifted.net
    a = x / 255.0  # the raw images, through the net layer by layer here, in float64
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        a = net.activation.function(a @ w.astype(np.float64) + b)
    logits = a @ net.weights[-1].astype(np.float64) + net.biases[-1]
    shifted_logits = logits - logits.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(shifted_logits).sum(axis=1)) - shifted_logits[np.arange(len(y)), y])
    confusion = np.zeros((net.sizes[-1],) * 2, np.int64)
    np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
    result = evaluate(net, x, y)
    np.testing.assert_array_equal(result.confusion, confusion)
    assert result.loss == pytest.approx(loss, rel=1e-5)


def test_prefetching_changes_no_number(square_data) -> None:
    results = []
    for prefetch in (True, False):
        trainer = Trainer(config(augment="shift,affine,hflip"), square_data)
        trainer.batches.prefetch = prefetch
        while not trainer.finished:
            trainer.run_epoch()
        results.append(trainer.net.parameters())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_batches_are_prepared_ahead_only_on_a_spare_core_and_never_for_elastic(square_data) -> None:
    """A worker thread pays only beside a BLAS that leaves a core free; elastic's matmuls would wait for the
    step's (OpenBLAS serialises its callers)."""
    from mlptrain.threads import available_cores, blas_threads

    with blas_threads(1):
        spare = available_cores() > 1
        assert Trainer(config(augment="shift"), square_data).batches.prefetch is spare
        assert Trainer(config(augment="elastic"), square_data).batches.prefetch is False
    with blas_threads(available_cores()):
        assert Trainer(config(augment="shift"), square_data).batches.prefetch is False


def test_augment_needs_two_dimensional_images(tmp_path: Path) -> None:
    data = load_dataset(write_dataset(tmp_path / "tiny"), "tiny")
    flat = type(data)(**{**vars(data), "image_shape": (64,)})
    with pytest.raises(ConfigError, match="two dimensions"):
        Trainer(config(augment="shift"), flat)


# --- the command line ----------------------------------------------------------------------


def test_fit_records_the_augmentation_and_refuses_hflip_on_digits(tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", "--dataset", "mnist", "--augment", "hflip"])
    assert result.exit_code == 2 and "mirrors images" in result.output and "Traceback" not in result.output
    run_dir = tmp_path / "run"
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "1", "--val-size",
                                 "30", "--augment", "shift,elastic:alpha=20", "--quiet", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    text = (run_dir / "config.yaml").read_text()
    assert "shift:pixels=2" in text and "elastic:alpha=20:sigma=4" in text


def test_plot_shows_what_an_augmenting_run_is_fed(tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    runner = CliRunner()
    base = ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "1", "--val-size", "30", "--quiet"]
    assert runner.invoke(cli, [*base, "--augment", "affine", "--out", str(tmp_path / "aug")]).exit_code == 0
    assert runner.invoke(cli, [*base, "--out", str(tmp_path / "plain")]).exit_code == 0
    from mlptrain.runs.files import load_augmented

    images, shape, specs = load_augmented(tmp_path / "aug")
    assert images.shape == (6, 8, 64) and shape == (8, 8)
    assert specs == ["affine:rotate=10:scale=0.1:shear=10:translate=2"]
    data = load_dataset(tiny, "tiny")
    trainer = Trainer(config(augment="affine"), data)
    np.testing.assert_array_equal(images[0], data.train_images[trainer.split.train[:8]])  # row 0: as stored
    assert not np.array_equal(images[1], images[0])
    result = runner.invoke(cli, ["plot", str(tmp_path / "aug"), str(tmp_path / "plain")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "aug" / "augment.png").stat().st_size > 1000
    assert not (tmp_path / "plain" / "augmented.npz").exists() and not (tmp_path / "plain" / "augment.png").exists()
