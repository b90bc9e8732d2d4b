"""The tools that read a normalised net: init-scan measures through its norm; inspect and plot show its parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_a_net_without_hidden_layers_is_scanned_as_it_is_built_without_a_norm(tiny: Path, data) -> None:
    scan = scan_init(config(tiny, hidden=[], norm="batch"), data, ["relu"], radii=RADII)
    assert scan.norm == "none" and not scan.plain
    assert scan.curves == scan_init(config(tiny, hidden=[]), data, ["relu"], radii=RADII).curves


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
    assert dashed == ["relu without batch norm: total gain (band hatched)"]


# --- inspect and plot ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(NORMS))
def normed_run(request: pytest.FixtureRequest, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp(request.param) / "run"
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), "--val-size", "30", "--hidden", "16,8",
                                      "--epochs", "2", "--norm", request.param, "--quiet", "--out", str(run)])
    assert result.exit_code == 0, result.output
    return run


def test_inspect_shows_each_layers_norm_parameters_as_saved(normed_run: Path) -> None:
    from mlptrain.runs.files import load_weights

    norm = load_weights(normed_run / "weights.npz")[0].norm
    result = CliRunner().invoke(cli, ["inspect", str(normed_run)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{norm.kind.name} norm parameters in"))
    table = lines[start + 2:]
    arrays = [("scale", norm.scales), ("shift", norm.shifts)]
    arrays += [("running mean", norm.running_mean), ("running var", norm.running_var)] if norm.kind.running else []
    assert len(table) == 2 * len(arrays)  # two hidden layers, the last lines of the report
    for row, (layer, (name, values)) in zip(table, [(k, a) for k in range(2) for a in arrays]):
        v = values[layer].astype(np.float64)
        label = f"hidden{layer + 1}" if name == "scale" else ""
        assert row.split() == [*label.split(), *name.split(), *(f"{x:.4g}" for x in (v.mean(), v.min(), v.max()))]
    assert any(abs(float(s.mean()) - 1.0) > 1e-6 for s in norm.scales)  # trained: the scales moved off their init


def test_plot_draws_the_norm_parameters(normed_run: Path) -> None:
    from mlptrain.plots.norms import norm_figure
    from mlptrain.runs.files import load_weights

    result = CliRunner().invoke(cli, ["plot", str(normed_run)])
    assert result.exit_code == 0, result.output
    assert f"wrote {normed_run / 'norm.png'}" in result.stdout and (normed_run / "norm.png").stat().st_size > 0
    norm = load_weights(normed_run / "weights.npz")[0].norm
    figure = norm_figure(norm, "run")
    titles = [ax.get_title() for ax in figure.axes]
    expected = ["scale (gamma) per unit, learned", "shift (beta) per unit, learned"]
    if norm.kind.running:
        expected += ["running mean per unit, for inference", "running variance per unit, for inference"]
    assert titles == expected
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["hidden1", "hidden2"]
    # the boxes, whiskers and outliers span every unit's scale: the drawn extremes are the saved ones
    drawn = [float(y) for line in figure.axes[0].lines if not line.get_label().startswith("at init")
             for y in line.get_ydata()]
    scales = np.concatenate(norm.scales)
    assert (min(drawn), max(drawn)) == pytest.approx((scales.min(), scales.max()))


def test_a_plain_run_gets_no_norm_panel_or_table(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), "--val-size", "30", "--hidden", "8", "--epochs",
                                    "1", "--quiet", "--out", str(run)]).exit_code == 0
    assert "norm parameters" not in CliRunner().invoke(cli, ["inspect", str(run)]).stdout
    assert "norm.png" not in CliRunner().invoke(cli, ["plot", str(run)]).stdout
