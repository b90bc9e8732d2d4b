"""Shipped configs: found by name from anywhere (an installed copy outside the checkout too), listed, printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import build_config, default_init
from mlptrain.configfile import describe_config, find_config, is_sweep_spec, load_config_file, shipped_configs

from synthetic import write_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_config_is_valid_and_described() -> None:
    shipped = shipped_configs()
    assert {"original-problem", "original-problem-decay", "relu", "logistic", "sweep-init-scale"} <= set(shipped)
    for name, path in shipped.items():
        values = load_config_file(path)
        assert path.read_text().startswith("#"), f"{name}: start with a comment saying what it is for"
        if not is_sweep_spec(values):
            default_init(build_config(values))


def test_configs_list_shows_each_descriptions_whole_first_sentence() -> None:
    result = CliRunner().invoke(cli, ["configs", "list"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    listing = " ".join(result.output.split())
    for name, path in shipped_configs().items():
        kind, about = describe_config(path)
        assert about[-1] in ".?!" and len(about) > 40, f"{name}: {about!r} is cut"
        assert f"{name} {kind} {about}" in listing
    assert describe_config(shipped_configs()["original-problem"])[1] == (
        "The question mlptrain grew out of: ReLU units with a tiny uniform initial-weight scale.")
    assert max(map(len, result.output.splitlines()[:-1])) <= 100  # wrapped to the terminal, at most 100 wide


def test_a_description_is_the_leading_comments_first_sentence(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("# Wider layers (Simard et al.'s net) at lr 0.1: about\n# 98.5%. Then more.\n"
                      "# mlptrain fit --config c.yaml\nepochs: 1\n")
    assert describe_config(config) == ("run", "Wider layers (Simard et al.'s net) at lr 0.1: about 98.5%.")
    config.write_text("# No full stop\n#\n# another paragraph.\nepochs: 1\n")
    assert describe_config(config) == ("run", "No full stop")


def test_the_validation_accuracy_a_config_states_is_its_benchmark_rows() -> None:
    rows = {row["name"]: row for row in json.loads((ROOT / "benchmarks" / "RESULTS.json").read_text())}
    checked = []
    for name, path in shipped_configs().items():
        said = [line for line in path.read_text().splitlines() if line.startswith("#") and "this file" in line]
        if name in rows and said:
            assert f"best val {rows[name]['best_val']:.2%}" in said[0], f"{name}: {said[0]}"
            checked.append(name)
    assert len(checked) >= 4, checked


def test_the_checkout_configs_folder_is_the_shipped_one() -> None:
    in_checkout = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert in_checkout == sorted(p.name for p in shipped_configs().values())


def test_a_file_on_disk_wins_over_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("relu") == shipped_configs()["relu"] == find_config("relu.yaml")
    assert find_config("configs/relu.yaml") == shipped_configs()["relu"]  # the checkout's spelling, anywhere
    (tmp_path / "relu").write_text("epochs: 1\n")
    assert find_config("relu") == Path("relu")


def test_an_unknown_name_suggests_the_close_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", "--config", "original-problm"])
    assert result.exit_code == 2 and "did you mean 'original-problem'?" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_configs_lists_and_shows(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["configs"])
    assert listed.exit_code == 0 and listed.output == runner.invoke(cli, ["configs", "list"]).output
    rows = {line.split()[0]: line.split()[1] for line in listed.output.splitlines()[:-1]
            if not line.startswith(" ")}  # a long description wraps onto indented lines
    assert rows["original-problem"] == "run" and rows["sweep-init-scale"] == "sweep"
    shown = runner.invoke(cli, ["configs", "show", "original-problem"])
    assert shown.exit_code == 0 and shown.output == shipped_configs()["original-problem"].read_text()
    bad = runner.invoke(cli, ["configs", "show", "relux"])
    assert bad.exit_code == 2 and "did you mean 'relu'?" in bad.stderr


def test_a_sweep_spec_given_to_fit_says_to_use_sweep() -> None:
    result = CliRunner().invoke(cli, ["fit", "--config", "sweep-init-scale"])
    assert result.exit_code == 2 and "is a sweep spec, not a run config: run it with mlptrain sweep" in result.stderr


def test_an_installed_copy_finds_its_configs_outside_the_checkout(tmp_path: Path) -> None:
    """Build a wheel, install it (no deps) into a folder, and run it from a directory with no configs/."""
    source, wheels, site, work = (tmp_path / name for name in ("source", "wheels", "site", "elsewhere"))
    # A copy of the sources: a build inside the checkout could pick up stale files from an old build/. The
    # checkout's outputs are left out at the top only: mlptrain/runs and mlptrain/data are packages.
    outputs = shutil.ignore_patterns("runs", "sweeps", "data", "site")
    everywhere = shutil.ignore_patterns(".git", ".venv", ".bench", "build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, symlinks=True, ignore=lambda folder, names: everywhere(folder, names) | (
        outputs(folder, names) if Path(folder) == ROOT else set()))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip[:-1], "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)  # not -q: the backend's warnings
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert "deprecated" not in built.stdout + built.stderr, built.stderr[-2000:]  # e.g. the old license table
    [wheel] = wheels.glob("mlptrain-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    work.mkdir()
    tiny = write_dataset(tmp_path / "tiny")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlptrain", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import mlptrain; print(mlptrain.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert where.stdout.startswith(str(site)), where.stdout  # the installed copy, not the checkout
    assert "original-problem" in run("configs", "list").stdout
    assert run("configs", "show", "original-problem").stdout.startswith("# The question mlptrain grew out of")
    fit = run("fit", "--config", "original-problem", "--dataset", str(tiny), "--hidden", "8,8", "--epochs", "1",
              "--val-size", "30", "--quiet", "--out", str(work / "run"))
    assert fit.returncode == 0, fit.stderr
    assert "init_range: 0.01" in (work / "run" / "config.yaml").read_text()
