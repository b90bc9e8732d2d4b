"""A sweep's summary over seeds: the t quantiles, the statistics, summary.csv/.md kept current, sweep --report."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.sweep.execute import run_sweep
from mlptrain.sweep.spec import load_spec
from mlptrain.sweep.summary import T975, stat, summarize, t975
from mlptrain.sweep.trial import run_trial

from synthetic import write_dataset

BASE = {"hidden": [8], "epochs": 1, "val_size": 30, "batch_size": 32, "lr": 0.1, "init": "uniform", "init_range": 0.5}


def t_quantile(df: int, p: float = 0.975) -> float:
    """Student's t quantile by integrating its density numerically and bisecting (no scipy)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(q: float) -> float:
        x = np.linspace(0.0, q, 200_001)
        density = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
        return 0.5 + float(np.sum((density[1:] + density[:-1]) / 2) * (x[1] - x[0]))

    low, high = 0.0, 20.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 19, 30, 40, 60, 120])
def test_t_table_matches_the_distribution(df: int) -> None:
    assert T975[df] == pytest.approx(t_quantile(df), abs=6e-4)


@pytest.mark.parametrize("df", [35, 50, 90, 500])
def test_t_between_the_table_entries_is_close(df: int) -> None:
    assert t975(df) == pytest.approx(t_quantile(df), abs=2e-3)


def test_statistics_of_a_grid_point() -> None:
    s = stat([0.5, None, 0.7, 0.6])
    assert s.n == 3 and s.mean == pytest.approx(0.6)
    assert s.std == pytest.approx(statistics.stdev([0.5, 0.6, 0.7])) == pytest.approx(0.1)  # ddof = 1
    assert s.se == pytest.approx(0.1 / math.sqrt(3))
    assert (s.ci95_low, s.ci95_high) == pytest.approx((0.6 - 4.303 * s.se, 0.6 + 4.303 * s.se))
    one = stat([0.9])
    assert one.n == 1 and one.mean == 0.9 and one.std is None and one.ci95_low is None
    assert stat([None, None]) is None


def records(statuses: list[str]) -> list[dict]:
    return [{"params": {"lr": 0.1}, "seed": i, "status": s, "best_val_acc": 0.5 + i / 10 if s != "failed" else None,
             "test_acc": 0.4 + i / 10 if s == "complete" else None} for i, s in enumerate(statuses)]


def test_summarize_counts_statuses_and_uses_the_trials_with_values() -> None:
    [point] = summarize(records(["complete", "diverged", "complete", "failed"]), ["lr"])
    assert point.trials == 4 and point.statuses == {"complete": 2, "diverged": 1, "failed": 1}
    assert point.val_acc.n == 3 and point.test_acc.n == 2 and point.test_acc.mean == pytest.approx(0.5)


class StopAfterOne:
    """An executor that runs one trial, then is interrupted as Ctrl-C would interrupt it."""

    description = "one trial, then Ctrl-C"

    def run(self, tasks: list, deliver) -> None:
        deliver(run_trial(tasks[0]))
        raise KeyboardInterrupt


def test_an_interrupted_sweep_has_its_summaries(tmp_path: Path) -> None:
    from mlptrain.errors import SweepInterrupted

    tiny = write_dataset(tmp_path / "tiny")
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), **BASE}, "grid": {"lr": [0.05, 0.1]}, "seeds": 2}))
    plan = load_spec(spec)
    with pytest.raises(SweepInterrupted):
        run_sweep(plan, tmp_path / "out", spec.read_text(), {str(tiny): tiny}, StopAfterOne(), 1, "test")
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["lr"] == "0.05" and rows[0]["trials"] == "1" and rows[0]["complete"] == "1"
    result = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    assert float(rows[0]["test_acc_mean"]) == result["test_acc"] and rows[0]["test_acc_std"] == ""
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "sample standard deviation (ddof = 1)" in markdown and "| 0.05 | 1 |" in markdown


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2 x 2 x 2-seed sweep, run once: (sweep dir, what it printed)."""
    root = tmp_path_factory.mktemp("sweep")
    tiny = write_dataset(root / "tiny")
    spec = root / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), **BASE},
                                "grid": {"activation": ["logistic", "relu"], "init_range": [0.01, 1.0]},
                                "seeds": 2}))
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(root / "out"), "--quiet", "--workers", "2"])
    assert result.exit_code == 0, result.output
    return root / "out", result.stdout


def test_summary_files_hold_one_row_per_grid_point(finished: tuple[Path, str]) -> None:
    out, _ = finished
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["activation"], r["init_range"]) for r in rows] == [
        ("logistic", "0.01"), ("logistic", "1"), ("relu", "0.01"), ("relu", "1")]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    relu = [r["test_acc"] for r in results if r["params"] == {"activation": "relu", "init_range": 1.0}]
    assert float(rows[3]["test_acc_mean"]) == pytest.approx(statistics.fmean(relu))
    assert float(rows[3]["test_acc_std"]) == pytest.approx(statistics.stdev(relu))
    assert rows[3]["test_acc_n"] == "2" and rows[3]["complete"] == "2"
    table = (out / "summary.md").read_text().splitlines()
    assert table[2].startswith("| activation | init_range | n | val acc %") and len(table) == 4 + 4


def test_report_prints_the_table_from_the_files_alone(finished: tuple[Path, str], tmp_path: Path) -> None:
    out, printed = finished
    copy = shutil.copytree(out, tmp_path / "copy")
    (tmp_path / "s.yaml").unlink(missing_ok=True)
    for trial in copy.iterdir():  # neither the data set nor the runs' weights are needed
        if trial.is_dir():
            (trial / "weights.npz").unlink()
    env = {"MLPTRAIN_MIRROR": "http://127.0.0.1:9/nowhere", "MLPTRAIN_DATA_DIR": str(tmp_path / "no-data")}
    result = CliRunner(env=env).invoke(cli, ["sweep", "--report", str(copy)])
    assert result.exit_code == 0, result.output
    table = printed.split("\nresults: ")[0]
    assert result.stdout.startswith(table) and "8 of 8 trials recorded" in result.stdout
    assert not (tmp_path / "no-data").exists()


def test_report_mistakes(finished: tuple[Path, str], tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["sweep", "--report", str(tmp_path)])
    assert result.exit_code == 1 and "is not a sweep directory" in result.output
    result = runner.invoke(cli, ["sweep", "spec.yaml", "--report", str(finished[0])])
    assert result.exit_code == 2 and "without SPEC.yaml" in result.output
    result = runner.invoke(cli, ["sweep"])
    assert result.exit_code == 2 and "--report SWEEP_DIR" in result.output


# --- plots with spread -------------------------------------------------------------------------


def test_heatmap_cells_show_mean_and_std(finished: tuple[Path, str], tmp_path: Path) -> None:
    from mlptrain.plots.sweep import sweep_heatmap_figure
    from mlptrain.sweep.results import read_results

    out = finished[0]
    points = {json.dumps([p.params["activation"], p.params["init_range"]]): p
              for p in summarize(read_results(out), ["activation", "init_range"])}
    fig = sweep_heatmap_figure(["activation", "init_range"], [["logistic", "relu"], [0.01, 1.0]], points, 2)
    [ax] = [a for a in fig.axes if a.get_xlabel() == "init_range"]
    relu = points[json.dumps(["relu", 1.0])].test_acc
    texts = [t.get_text() for t in ax.texts]
    assert f"{100 * relu.mean:.1f}\n± {100 * relu.std:.1f}" in texts and len(texts) == 4
    assert "mean ± sample std over 2 seeds" in fig.texts[0].get_text()
    assert fig.axes[-1].yaxis.get_major_formatter()(0.5, 0) == "50%"  # the colour bar in percent


def test_three_keys_give_one_heatmap_per_value_of_the_third(tmp_path: Path) -> None:
    from mlptrain.plots.sweep import sweep_heatmap_figure

    recs = [{"params": {"a": a, "b": b, "c": c}, "status": "complete", "best_val_acc": 0.5, "test_acc": 0.4 + i / 100}
            for i, (a, b, c) in enumerate((a, b, c) for a in "xy" for b in (1, 2) for c in ("p", "q", "r"))]
    points = {json.dumps([p.params[k] for k in "abc"]): p for p in summarize(recs, ["a", "b", "c"])}
    fig = sweep_heatmap_figure(["a", "b", "c"], [["x", "y"], [1, 2], ["p", "q", "r"]], points, 1)
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "b"]
    assert [ax.get_title() for ax in panels] == ["c=p", "c=q", "c=r"]
    assert [t.get_text() for t in panels[1].texts] == ["41.0", "44.0", "47.0", "50.0"]  # c=q, rows a, cols b


def test_curves_of_a_categorical_key_use_a_categorical_axis(tmp_path: Path) -> None:
    from mlptrain.plots.sweep import sweep_curves_figure

    recs = [{"params": {"activation": a}, "status": "complete", "best_val_acc": 0.5 + s / 10, "test_acc": 0.4 + s / 10}
            for a in ("tanh", "relu", "logistic") for s in (0, 1)]
    points = {json.dumps([p.params["activation"]]): p for p in summarize(recs, ["activation"])}
    fig = sweep_curves_figure("activation", ["tanh", "relu", "logistic"], points, 2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tanh", "relu", "logistic"]
    assert all(line.get_linestyle() == "None" for line in ax.get_lines() if len(line.get_xdata()) == 3)
    assert ax.yaxis.get_major_formatter()(0.5, 0) in ("50%", "50.0%")


def test_plot_of_a_three_key_sweep_writes_small_multiples(tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), **BASE},
                                "grid": {"activation": ["logistic", "relu"], "init_range": [0.1, 1.0],
                                         "lr": [0.05, 0.2]}}))
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--workers",
                                      "2", "--plot"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "sweep-heatmap.png").read_bytes()[:4] == b"\x89PNG"
