"""The tools that read a normalised net: init-scan measures through its norm; inspect and plot show its parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import Config, build_config
from mlptrain.data.loading import load_dataset
from mlptrain.nn.norms import NORMS, NormLayers
from mlptrain.tune.initscan import gain_position, normalised_gain, scan_init

from synthetic import write_dataset

DEEP = {"hidden": [32, 32, 32, 32], "activation": "relu", "init_range": 0.01}  # the original problem, small


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def data(tiny: Path):
    return load_dataset(tiny, str(tiny))


def config(tiny: Path, **values) -> Config:
    return build_config({"dataset": str(tiny), "val_size": 30, **DEEP, **values})


RADII = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]


# --- init-scan --------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_a_deep_relu_net_at_a_tiny_r_vanishes_without_a_norm_and_not_with_one(tiny: Path, data, norm: str) -> None:
    plain = scan_init(config(tiny), data, ["relu"], radii=RADII)
    normed = scan_init(config(tiny, norm=norm), data, ["relu"], radii=RADII)
    assert gain_position(plain.yours_gain["relu"], plain.factor) == "below"
    assert gain_position(normed.yours_gain["relu"], normed.factor) == "inside"
    assert not plain.plain and normed.norm == norm
    # the normalised scan carries the plain curves along, and its band is many times wider, reaching far lower
    assert [c.bands for c in normed.plain] == [c.bands for c in plain.curves]
    (low, high), = normed.curves[0].bands
    (plain_low, plain_high), = plain.curves[0].bands
    assert high / low > 10 * plain_high / plain_low and low < plain_low / 10 and low <= 0.01 <= high


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_the_scan_measures_through_the_norm_and_its_eps(tiny: Path, data, norm: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = NormLayers.forward
    monkeypatch.setattr(NormLayers, "forward", lambda self, *a, **k: calls.append(a[0]) or original(self, *a, **k))
    scan = scan_init(config(tiny, norm=norm), data, ["relu"], radii=RADII)
    assert sorted(set(calls)) == [0, 1, 2, 3]  # every hidden layer's norm, in training mode
    # an eps far above the tiny init's variances leaves the norms nothing to rescale: the signal vanishes again
    starved = scan_init(config(tiny, norm=norm, norm_eps=1.0), data, ["relu"], radii=RADII)
    assert gain_position(starved.yours_gain["relu"], scan.factor) == "below"
    assert starved.curves[0].bands[0][0] > scan.curves[0].bands[0][0]


def test_normalised_gain_counts_only_the_output_layers_growth(tiny: Path, data) -> None:
    from mlptrain.train.trainer import Trainer, initial_network

    x, _ = Trainer(config(tiny, norm="batch"), data).probe_batch()
    small = initial_network(config(tiny, norm="batch"), data.n_inputs, data.n_classes)
    large = initial_network(config(tiny, norm="batch", init_range=3.0), data.n_inputs, data.n_classes)
    assert normalised_gain(small, x) == pytest.approx(1.0, abs=0.02)  # batch norm: unit spread, small logits
    assert normalised_gain(large, x) > 2.0  # the output layer's U(-3, 3) weights: logits grow
    small.norm.scales[-1] *= 3.0  # a larger scale spreads the signal as much more: the ratio is unchanged
    assert normalised_gain(small, x) == pytest.approx(1.0, abs=0.02)


def test_init_scan_cli_shows_the_bands_with_and_without_the_norm(tiny: Path, tmp_path: Path) -> None:
    from mlptrain.plots.tune import init_scan_figure

    args = ["init-scan", "--dataset", str(tiny), "--hidden", "32,32,32,32", "--init-range", "0.01",
            "--val-size", "30", "--per-decade", "2", "--out", str(tmp_path / "scan.png")]
    plain = CliRunner().invoke(cli, args)
    normed = CliRunner().invoke(cli, [*args, "--norm", "batch"])
    assert plain.exit_code == 0 and normed.exit_code == 0, normed.output
    assert "note:" not in normed.stdout and "with batch norm" not in plain.stdout
    band = plain.stdout.splitlines()[1].removeprefix("relu: healthy r ")
    assert f"with batch norm (without it: {band})" in normed.stdout.splitlines()[1]
    assert "yours (uniform r=0.01)" in normed.stdout and "inside" in normed.stdout.splitlines()[-2]
    scan = scan_init(config(tiny, norm="batch"), load_dataset(tiny, str(tiny)), ["relu"], radii=RADII)
    axes = init_scan_figure(scan).axes[0]
    assert "with batch norm" in axes.get_title()
    dashed = [line.get_label() for line in axes.lines if line.get_linestyle() == "--"]
    assert dashed == ["relu without batch norm: total gain"]
