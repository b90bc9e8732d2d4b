"""mlptrain sweep: spec validation, grid expansion and names, the local pool, Dask, failures, re-runs, Ctrl-C, plots.

Everything trains on a tiny synthetic data set (tests/synthetic.py); the
pool and Dask tests start real worker processes on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.errors import ConfigError, SweepError
from mlptrain.sweep.spec import format_value, load_spec
from mlptrain.sweep.summary import best_first, summarize

from synthetic import write_dataset

BASE = {"hidden": [8], "epochs": 2, "val_size": 30, "batch_size": 32, "lr": 0.1, "init": "uniform"}
GRID = {"activation": ["logistic", "relu"], "init_range": [0.01, 1.0]}  # x 2 seeds = 8 trials


def write_spec(path: Path, data: Path, grid: dict | None = None, base: dict | None = None, **top) -> Path:
    spec = {"base": {"dataset": str(data), **BASE, **(base or {})}, "grid": GRID if grid is None else grid, **top}
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def sweep(runner: CliRunner, spec: Path, out: Path, *extra: str):
    return runner.invoke(cli, ["sweep", str(spec), "--out", str(out), "--quiet", *extra])


def results(out: Path, without: tuple[str, ...] = ("wall_seconds",)) -> list[dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in without} for row in rows]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def local_sweep(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The 8-trial sweep run once on two local processes: (spec, sweep dir)."""
    root = tmp_path_factory.mktemp("local")
    spec = write_spec(root / "spec.yaml", tiny, seeds=2)
    result = sweep(CliRunner(), spec, root / "out", "--workers", "2")
    assert result.exit_code == 0, result.output
    return spec, root / "out"


# --- spec, grid and names ------------------------------------------------------------------


def test_grid_expands_in_order_with_names_from_the_varying_keys(tmp_path: Path, tiny: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={**GRID, "momentum": [0.5]}, base={"seed": 7}, seeds=2)
    plan = load_spec(spec)
    assert plan.varying == ["activation", "init_range"]
    assert [t.name for t in plan.trials[:3]] == [
        "activation=logistic,init_range=0.01,seed=7", "activation=logistic,init_range=0.01,seed=8",
        "activation=logistic,init_range=1.0,seed=7"]
    assert len(plan.trials) == 8 and len({t.name for t in plan.trials}) == 8
    last = plan.trials[-1]
    assert last.params == {"activation": "relu", "init_range": 1.0, "seed": 8}
    assert (last.config.activation, last.config.init, last.config.init_range) == ("relu", "uniform", 1.0)
    assert last.config.momentum == 0.5 and last.config.hidden == (8,)
    assert plan.describe() == "2 activation x 2 init_range x 2 seeds = 8 trials"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("sweep-*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_sweep_specs_are_valid(path: Path) -> None:
    plan = load_spec(path)
    assert plan.trials and len({t.name for t in plan.trials}) == len(plan.trials)


def test_init_scale_spec_is_the_study_of_the_readme() -> None:
    plan = load_spec(Path(__file__).resolve().parents[1] / "configs" / "sweep-init-scale.yaml")
    assert plan.grid["activation"] == ["logistic", "tanh", "relu", "leaky-relu"]
    assert plan.grid["init_range"] == [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0] and plan.seeds == [0, 1]
    assert {t.config.init for t in plan.trials} == {"uniform"} and len(plan.trials) == 56


def test_a_grid_init_replaces_the_base_init_as_flags_do(tmp_path: Path, tiny: Path) -> None:
    plan = load_spec(write_spec(tmp_path / "s.yaml", tiny, grid={"init": ["he-normal", "glorot-uniform"]},
                                base={"init_range": 0.5}))
    assert [(t.config.init, t.config.init_range) for t in plan.trials] == [("he-normal", None),
                                                                          ("glorot-uniform", None)]
    plan = load_spec(write_spec(tmp_path / "d.yaml", tiny, grid={"lr": [0.1, 0.2]}, base={"init": None}))
    assert {t.config.init for t in plan.trials} == {"he-normal"}  # the activation's default, as fit picks it


def test_the_config_file_then_base_then_the_grid_as_a_command_resolves_them(tmp_path: Path, tiny: Path) -> None:
    (tmp_path / "run.yaml").write_text("lr: 0.3\nmomentum: 0.5\npatience: 3\n")
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={"patience": [None, 5]},
                      base={"momentum": 0.7, "init_range": 0.1},
                      config="run.yaml")
    trials = load_spec(spec).trials
    assert [(t.config.lr, t.config.momentum, t.config.patience) for t in trials] == [(0.1, 0.7, None),
                                                                                      (0.1, 0.7, 5)]
    (tmp_path / "bad.yaml").write_text("momentum: 2\n")
    with pytest.raises(ConfigError, match=f"invalid momentum \\(from {tmp_path / 'bad.yaml'}\\)"):
        load_spec(write_spec(tmp_path / "b.yaml", tiny, config="bad.yaml"))
    with pytest.raises(ConfigError, match="s.yaml is a sweep spec, not a run config"):
        load_spec(write_spec(tmp_path / "c.yaml", tiny, config="s.yaml"))
    with pytest.raises(ConfigError, match=r"s.yaml grid: dataset 'kmnst' is neither .* \(in the trial"):
        load_spec(write_spec(tmp_path / "s.yaml", tiny, grid={"dataset": ["mnist", "kmnst"]}, base={"init_range": 1}))


def test_sample_draws_distinct_points_reproducibly(tmp_path: Path, tiny: Path) -> None:
    grid = {"lr": [0.01, 0.02, 0.05, 0.1, 0.2], "init_range": [0.1, 0.3, 1.0]}
    spec = write_spec(tmp_path / "s.yaml", tiny, grid=grid, sample=4, sample_seed=3, seeds=2)
    names = [t.name for t in load_spec(spec).trials]
    assert len(names) == 8 and len(set(names)) == 8 and names == [t.name for t in load_spec(spec).trials]
    other = write_spec(tmp_path / "o.yaml", tiny, grid=grid, sample=4, sample_seed=4, seeds=2)
    assert names != [t.name for t in load_spec(other).trials]


@pytest.mark.parametrize("value, text", [
    (0.001, "0.001"), (1e-05, "1e-05"), (1.0, "1.0"), (3, "3"), (True, "true"), (None, "none"),
    ((256, 256), "256x256"), ((), "none"), ("leaky-relu", "leaky-relu"),
])
def test_trial_name_values(value: object, text: str) -> None:
    assert format_value(value) == text


def test_trial_names_are_filesystem_safe_and_distinct() -> None:
    paths = ["/data/a b/mnist", "/data/a_b/mnist", "x" * 300]
    names = [format_value(p) for p in paths]
    assert len(set(names)) == 3
    assert all("/" not in n and " " not in n and len(n) <= 40 for n in names)


@pytest.mark.parametrize("spec, message", [
    ({"gird": {}}, "unknown sweep spec key 'gird'; did you mean 'grid'?"),
    ({"epochs": 3}, "'epochs' is a config key: put it under base:"),
    ({"grid": {"activaton": ["relu"]}}, "unknown config key 'activaton' in"),
    ({"grid": {"init_range": [0.1, "big"]}}, "invalid init_range (from"),
    ({"grid": {"activation": ["relu", "maxout"]}}, "invalid activation (from"),
    ({"grid": {"lr": []}}, "grid: lr must be a non-empty list"),
    ({"grid": {"lr": 0.1}}, "grid: lr must be a non-empty list"),
    ({"grid": {}}, "nothing to sweep"),
    ({"grid": {"seed": [1, 2]}}, "use seeds: N"),
    ({"grid": {"activation": ["sigmoid", "logistic"]}}, "lists 'logistic' twice"),
    ({"sample": 9}, "sample must be a whole number from 1 to 4"),
    ({"seeds": 0}, "seeds must be a count"),
    ({"seeds": [1, 1]}, "seeds must be a count"),
    ({"base": {"lr": -1}}, "invalid lr (from"),
    ({"grid": {"init": ["uniform", "he-normal"]}},
     "needs init_range (--init-range) (in the trial init=uniform,seed=0)"),
])
def test_spec_mistakes_are_one_line_before_any_trial(runner: CliRunner, tmp_path: Path, tiny: Path,
                                                     spec: dict, message: str) -> None:
    path = tmp_path / "bad.yaml"
    data = {"base": {"dataset": str(tiny), **BASE}, "grid": GRID} | spec
    if "base" in spec:
        data["base"] = {"dataset": str(tiny), **BASE, **spec["base"]}
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="."):
        load_spec(path)
    result = sweep(runner, path, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:1", "--cluster", "local"], "not both"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers does not apply to --scheduler"),
])
def test_option_mistakes(runner: CliRunner, tmp_path: Path, tiny: Path, args: list[str], message: str) -> None:
    result = sweep(runner, write_spec(tmp_path / "s.yaml", tiny), tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_plot_needs_a_varying_key(runner: CliRunner, tmp_path: Path, tiny: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={}, base={"init_range": 0.1}, seeds=2)
    result = sweep(runner, spec, tmp_path / "out", "--plot")
    assert result.exit_code == 2 and "this sweep varies only the seed" in result.stderr
    assert not (tmp_path / "out").exists()


# --- running: local pool, results, re-runs -------------------------------------------------------


def test_local_sweep_writes_runs_results_and_a_table(runner: CliRunner, local_sweep: tuple[Path, Path]) -> None:
    spec, out = local_sweep
    rows = results(out)
    assert [r["trial"] for r in rows] == [t.name for t in load_spec(spec).trials]
    assert {r["status"] for r in rows} == {"complete"} and all(r["error"] is None for r in rows)
    first = rows[0]
    assert first["params"] == {"activation": "logistic", "init_range": 0.01} and first["seed"] == 0
    assert first["epochs_run"] == 2 and first["blas_threads"] == 1 and 0 <= first["test_acc"] <= 1
    assert {"final_val_acc", "best_val_acc", "test_loss", "warnings"} <= set(first)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["trial", "status", "activation", "init_range", "seed"] and "test_acc" in header
    sweep_json = json.loads((out / "sweep.json").read_text())
    assert sweep_json["mlptrain"] and sweep_json["varying"] == ["activation", "init_range"]
    assert (out / "spec.yaml").read_text() == spec.read_text()
    run = out / first["trial"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] == first["test_acc"] and "(trial " in summary["command"]
    evaluated = runner.invoke(cli, ["eval", str(run), "--json"])  # a normal run directory
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["accuracy"] == first["test_acc"]
    assert runner.invoke(cli, ["inspect", str(run)]).exit_code == 0


def test_summary_table_groups_over_seeds_best_first(local_sweep: tuple[Path, Path]) -> None:
    rows = results(local_sweep[1])
    groups = best_first(summarize(rows, ["activation", "init_range"]))
    assert len(groups) == 4 and all(g.trials == 2 for g in groups)
    means = [g.val_acc.mean for g in groups]
    assert means == sorted(means, reverse=True)
    relu = next(g for g in groups if g.params == {"activation": "relu", "init_range": 1.0})
    tests = [r["test_acc"] for r in rows if r["params"] == relu.params]
    assert relu.test_acc.mean == pytest.approx(sum(tests) / 2)


def test_rerun_skips_finished_trials(runner: CliRunner, local_sweep: tuple[Path, Path]) -> None:
    spec, out = local_sweep
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    rows = results(out, without=())
    result = sweep(runner, spec, out, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "8 of 8 trials finished earlier: skipped" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")} == before
    assert results(out, without=()) == rows
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["activation", "init_range", "seeds", "val"] and "±" in lines[1]


def test_another_spec_into_the_same_dir_is_refused(runner: CliRunner, local_sweep: tuple[Path, Path],
                                                   tiny: Path, tmp_path: Path) -> None:
    other = write_spec(tmp_path / "other.yaml", tiny, base={"lr": 0.2}, seeds=2)  # more seeds would grow it
    result = sweep(runner, other, local_sweep[1])
    assert result.exit_code == 2 and "holds another sweep: base: lr is 0.2 (was 0.1)" in result.stderr


def test_failed_and_diverged_trials_are_recorded_and_the_rest_finish(runner: CliRunner, tmp_path: Path,
                                                                     tiny: Path) -> None:
    # init_range 30 with lr 10 diverges; val_size 100000 is valid alone but larger than the data: the trial raises.
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={"init_range": [0.1, 30.0], "val_size": [30, 100000]},
                      base={"hidden": [16, 16, 16], "lr": 10.0, "epochs": 3})
    result = sweep(runner, spec, tmp_path / "out", "--workers", "2")
    assert result.exit_code == 1, result.output
    assert "Error: 2 of 4 trials failed (first: init_range=0.1,val_size=100000,seed=0: val_size 100000 leaves no " \
           "training images" in result.stderr
    rows = {r["trial"]: r for r in results(tmp_path / "out")}
    assert rows["init_range=0.1,val_size=30,seed=0"]["status"] == "complete"
    diverged = rows["init_range=30.0,val_size=30,seed=0"]
    assert diverged["status"] == "diverged" and "diverged in epoch" in diverged["error"]
    assert diverged["test_acc"] is None and "diverged" in diverged["warnings"]
    assert [rows[n]["status"] for n in rows if "100000" in n] == ["failed", "failed"]
    assert "1 diverged" in result.stdout and "1 failed" in result.stdout

    again = sweep(runner, spec, tmp_path / "out", "--workers", "2")  # finished (diverged too) are kept
    assert again.exit_code == 1 and "2 of 4 trials finished earlier: skipped" in again.stderr
    assert [r["status"] for r in results(tmp_path / "out")] == [r["status"] for r in rows.values()]


@pytest.mark.parametrize("where", [["--workers", "2"], ["--cluster", "local", "--workers", "2"]],
                         ids=["local-pool", "dask-local-cluster"])
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path: Path, tiny: Path, where: list[str]) -> None:
    if "--cluster" in where:
        pytest.importorskip("distributed")
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={"init_range": [0.1, 0.3]},
                      base={"hidden": [64], "epochs": 200, "val_size": 30})
    command = [sys.executable, "-m", "mlptrain", "sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet",
               *where]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # A terminal's Ctrl-C goes to the whole process group: the sweep, its workers, a LocalCluster's processes.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while not list((tmp_path / "out").glob("*/checkpoint.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "sweep interrupted by Ctrl-C" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 2  # the "sweep: ..." line and the error
    unfinished = [d for d in (tmp_path / "out").iterdir() if d.is_dir() and not (d / "summary.json").exists()]
    listing = {d.name: sorted(p.name for p in d.iterdir()) for d in (tmp_path / "out").iterdir() if d.is_dir()}
    assert unfinished, (listing, stderr)  # the one whose checkpoint we saw, at least: it resumes below

    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = results(tmp_path / "out")
    assert [r["status"] for r in rows] == ["complete", "complete"] and all(r["epochs_run"] == 200 for r in rows)
    resumed = [json.loads((tmp_path / "out" / r["trial"] / "summary.json").read_text())["resumed"] for r in rows]
    assert any(resumed)


# --- Dask -----------------------------------------------------------------------------------------


def test_our_local_cluster_workers_keep_asyncio_reports_off_the_terminal() -> None:
    # What a Ctrl-C sometimes made a worker print: "Future exception was never retrieved" (see DaskExecutor._connect).
    pytest.importorskip("distributed")
    import logging

    from mlptrain.sweep.executors import DaskExecutor

    with DaskExecutor(None, 1) as executor:
        level = executor._client.submit(lambda: logging.getLogger("asyncio").getEffectiveLevel(), pure=False).result()
    assert level == logging.CRITICAL


def test_dask_local_cluster_gives_the_same_results(runner: CliRunner, local_sweep: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    spec, out = local_sweep
    result = sweep(runner, spec, tmp_path / "dask", "--cluster", "local", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert results(tmp_path / "dask") == results(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and `dask worker` started by hand on loopback, as docs/sweeps.md says."""
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    bin_dir = Path(sys.executable).parent
    log = (tmp_path / "dask.log").open("w")
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                  address.rsplit(":", 1)[1], "--no-dashboard"], stdout=log, stderr=log)
    worker = subprocess.Popen([bin_dir / "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                               "--no-dashboard"], stdout=log, stderr=log)
    try:
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)
        log.close()


def test_a_hand_started_dask_scheduler_gives_the_same_results(runner: CliRunner, local_sweep: tuple[Path, Path],
                                                              dask_scheduler: str, tmp_path: Path) -> None:
    spec, out = local_sweep
    result = sweep(runner, spec, tmp_path / "sched", "--scheduler", dask_scheduler)
    assert result.exit_code == 0, result.output
    assert "on the Dask scheduler at" in result.stderr
    assert results(tmp_path / "sched") == results(out)


def test_unreachable_scheduler_is_one_clear_error() -> None:
    pytest.importorskip("distributed")
    from mlptrain.sweep.executors import DaskExecutor

    with pytest.raises(SweepError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:\d+ .*dask scheduler"):
        with DaskExecutor(f"tcp://127.0.0.1:{_free_port()}", 1, connect_timeout=1.0):
            pass


def test_missing_dask_says_how_to_install_it(runner: CliRunner, tmp_path: Path, tiny: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    result = sweep(runner, write_spec(tmp_path / "s.yaml", tiny), tmp_path / "out", "--cluster", "local")
    assert result.exit_code == 1
    assert result.stderr == "Error: --cluster/--scheduler need Dask: pip install 'mlptrain[dask]'\n"
    assert not (tmp_path / "out").exists()


# --- plots ------------------------------------------------------------------------------------------


def test_plot_sweep_dir_writes_a_heatmap(runner: CliRunner, local_sweep: tuple[Path, Path], tmp_path: Path) -> None:
    copy = shutil.copytree(local_sweep[1], tmp_path / "copy")
    result = runner.invoke(cli, ["plot", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "sweep-heatmap.png").read_bytes()[:4] == b"\x89PNG"
    result = runner.invoke(cli, ["plot", str(copy), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "is a sweep: its plots go into its directory" in result.stderr


def test_sweep_plot_of_one_key_draws_curves(runner: CliRunner, tmp_path: Path, tiny: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, grid={"init_range": [0.01, 0.1, 1.0]}, base={"epochs": 1})
    result = sweep(runner, spec, tmp_path / "out", "--workers", "2", "--plot")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'out' / 'sweep-curves.png'}" in result.stdout
