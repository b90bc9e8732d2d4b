"""The CLI end to end with CliRunner on a tiny synthetic IDX data set: fit -> files -> eval."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.data.datasets import DATASETS
from mlptrain.threads import cpu_model

from synthetic import write_dataset

FIT_FAST = ["--hidden", "16", "--epochs", "3", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def fit(runner: CliRunner, tiny: Path, out: Path, *extra: str):
    return runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(out), *extra])


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.all_commands().items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(cli, [*path, "-h"])
    assert result.exit_code == 0
    assert "Example" in result.output and "mlptrain " in result.output


def test_version_and_python_m(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["--version"]).output.startswith("mlptrain, version ")
    done = subprocess.run([sys.executable, "-m", "mlptrain", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "fit" in done.stdout


@pytest.mark.parametrize("args, hint", [(["fitt"], "No such command 'fitt'. Did you mean 'fit'?"),
                                        (["init-scn"], "No such command 'init-scn'. Did you mean 'init-scan'?"),
                                        (["data", "lst"], "No such command 'lst'. Did you mean 'list'?"),
                                        (["zzz"], "No such command 'zzz'.\n")])
def test_a_mistyped_command_gets_the_close_one_suggested(args: list[str], hint: str) -> None:
    # A fresh process: in this one, earlier tests have imported the lazy commands the group suggests from.
    done = subprocess.run([sys.executable, "-m", "mlptrain", *args], capture_output=True, text=True)
    assert done.returncode == 2 and f"Error: {hint}" in done.stderr, done.stderr


def test_fit_writes_a_complete_run_and_eval_agrees(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = fit(runner, tiny, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml", "diagnostics.json", "metrics.jsonl", "state.npz", "summary.json", "weights.npz"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["hidden"] == [16] and config["init"] == "he-normal" and config["dataset"] == str(tiny)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert set(metrics[0]) == {"epoch", "train_loss", "train_acc", "loss_max", "loss_spikes", "val_loss", "val_acc",
                               "lr", "seconds", "layers"}
    assert [layer["layer"] for layer in metrics[0]["layers"]] == ["hidden1", "logits"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_run"] == 3
    assert summary["dataset"]["n_classes"] == 3 and len(summary["dataset"]["sha256"]) == 4
    assert {"numpy", "blas_kernels"} <= summary["versions"].keys() and summary["seed"] == 0
    assert summary["cpu_model"] == cpu_model() and summary["cpu_model"]  # times are only comparable on one CPU
    with np.load(out / "weights.npz", allow_pickle=False) as npz:
        assert npz["W0"].shape == (64, 16) and str(npz["activation"]) == "relu"

    result = runner.invoke(cli, ["eval", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"] == summary["test"]["accuracy"] and report["accuracy"] > 0.6  # chance is 1/3
    assert report["loss"] == pytest.approx(summary["test"]["loss"])
    assert np.array(report["confusion"]).sum() == 100 and len(report["per_class_accuracy"]) == 3
    assert json.loads((out / "eval.json").read_text()) == report


def test_eval_table(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    fit(runner, tiny, tmp_path / "run")
    result = runner.invoke(cli, ["eval", str(tmp_path / "run")])
    assert result.exit_code == 0
    assert "test set, 100 images: accuracy" in result.output and "<- predicted" in result.output


def test_min_accuracy_gate(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    fit(runner, tiny, tmp_path / "run")
    accuracy = json.loads((tmp_path / "run" / "summary.json").read_text())["test"]["accuracy"]
    assert runner.invoke(cli, ["eval", str(tmp_path / "run"), "--min-accuracy", "0.5"]).exit_code == 0
    assert runner.invoke(cli, ["eval", str(tmp_path / "run"), "--min-accuracy", "50"]).exit_code == 0
    assert accuracy < 1.0  # the synthetic set is noisy enough that the gate can fail
    result = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--min-accuracy", str(accuracy + 0.001)])
    assert result.exit_code == 3 and "is below --min-accuracy" in result.stderr


def test_same_seed_same_numbers_other_seed_other_numbers(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    def metrics(name: str, seed: str) -> list[dict]:
        assert fit(runner, tiny, tmp_path / name, "--seed", seed).exit_code == 0
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    first = metrics("a", "7")
    assert metrics("b", "7") == first
    assert metrics("c", "8") != first


def test_default_init_is_announced(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    args = [a for a in FIT_FAST if a != "--quiet"]  # --quiet silences it (tests/test_tune.py)
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), *args, "--out", str(tmp_path / "run"),
                                 "--activation", "tanh"])
    assert "init: glorot-uniform (the default for tanh" in result.stderr
    result = fit(runner, tiny, tmp_path / "run2", "--activation", "relu", "--init-range", "0.5")
    assert "init:" not in result.stderr
    assert yaml.safe_load((tmp_path / "run2" / "config.yaml").read_text())["init"] == "uniform"


def test_config_file_with_flag_overrides(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"dataset: {tiny}\nhidden: [8, 8]\nactivation: logistic\ninit: glorot-normal\nepochs: 1\nlr: 0.3\n"
    )
    result = runner.invoke(cli, ["fit", "--config", str(config), "--epochs", "2", "--init-range", "0.2",
                                 "--val-size", "20", "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["hidden"] == [8, 8] and resolved["epochs"] == 2 and resolved["lr"] == 0.3
    assert resolved["init"] == "uniform" and resolved["init_range"] == 0.2


@pytest.mark.parametrize(
    "extra",
    [["--hidden", ""], ["--val-size", "0"], ["--dtype", "float64"], ["--activation", "sigmoid"],
     ["--hidden", "8,8,8", "--activation", "elu", "--init", "lecun-normal"]],
    ids=["softmax-regression", "no-validation", "float64", "alias", "three-layers"],
)
def test_fit_variants(runner: CliRunner, tiny: Path, tmp_path: Path, extra: list[str]) -> None:
    result = fit(runner, tiny, tmp_path / "run", *extra)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "summary.json").exists()


def test_epoch_lines_on_stdout(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    args = [a for a in FIT_FAST if a != "--quiet"]
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), *args, "--out", str(tmp_path / "run")])
    lines = result.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3 and "test accuracy" in result.stdout
    assert "stopped: completed all 3 epochs" in lines and any(line.startswith("best epoch: ") for line in lines)


def test_raw_idx_files_work_too(runner: CliRunner, tmp_path: Path) -> None:
    raw = write_dataset(tmp_path / "raw", gz=False, shape=(6, 5), n_classes=4)
    result = fit(runner, raw, tmp_path / "run")
    assert result.exit_code == 0, result.output


# --- user errors: one line, right exit status, nothing written ------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "-1"], "Error: invalid lr (from --lr): got -1.0"),
        (["--batch-size", "0"], "Error: invalid batch_size (from --batch-size)"),
        (["--hidden", "16,0,4"], "Error: invalid hidden (from --hidden)"),
        (["--init-range", "0"], "Error: invalid init_range"),
        (["--init", "uniform"], "Error: init 'uniform' needs init_range"),
        (["--init", "he-normal", "--init-std", "0.1"], "Error: init_std applies only to init 'normal'"),
        (["--val-size", "300"], "Error: val_size 300 leaves no training images"),
        (["--activation", "maxout"], "Invalid value for '--activation'"),
        (["--epochs", "two"], "Invalid value for '--epochs'"),
    ],
)
def test_bad_flags_exit_2_and_write_nothing(runner: CliRunner, tiny: Path, tmp_path: Path, args, message) -> None:
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, message",
    [("lr: -3\n", "invalid lr (from"), ("lrate: 3\n", "unknown config key 'lrate'"),
     ("hidden: [256, 0]\n", "invalid hidden"), ("epochs: [1\n", "not valid YAML")],
)
def test_bad_config_file_exits_2(runner: CliRunner, tiny: Path, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    args = ["fit", "--config", str(config), "--dataset", str(tiny), "--out", str(tmp_path / "run")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_out_that_holds_files_is_refused(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    result = fit(runner, tiny, tmp_path / "run")
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]


def test_missing_or_incomplete_dataset_dir(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    result = fit(runner, tmp_path / "nowhere", tmp_path / "run")
    assert result.exit_code == 2 and "nor an existing path; a path may hold: (1) a directory of IDX files" \
        in result.stderr
    (tiny / "t10k-labels-idx1-ubyte.gz").unlink()
    result = fit(runner, tiny, tmp_path / "run")
    assert result.exit_code == 1 and "lacks t10k-labels-idx1-ubyte.gz" in result.stderr
    assert not (tmp_path / "run").exists() and "Traceback" not in result.output


def test_mismatched_counts(runner: CliRunner, tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", n_train=300)
    write_dataset(tmp_path / "b", n_train=200)
    (tmp_path / "b" / "train-labels-idx1-ubyte.gz").replace(tmp_path / "a" / "train-labels-idx1-ubyte.gz")
    result = fit(runner, tmp_path / "a", tmp_path / "run")
    assert result.exit_code == 1 and "300 images but train-labels-idx1-ubyte.gz holds 200 labels" in result.stderr


def test_eval_errors(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["eval", str(tmp_path / "none")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = runner.invoke(cli, ["eval", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "weights.npz does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_eval_refuses_pickles_and_damaged_weights(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit(runner, tiny, run)
    with np.load(run / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(run / "weights.npz", **{**arrays, "W0": np.array([object()], dtype=object)})
    result = runner.invoke(cli, ["eval", str(run)])
    assert result.exit_code == 1 and "weights.npz" in result.stderr and "Traceback" not in result.output
    np.savez(run / "weights.npz", **{**arrays, "b1": np.zeros(7, np.float32)})
    assert "do not fit together" in runner.invoke(cli, ["eval", str(run)]).stderr
    del arrays["W1"]
    np.savez(run / "weights.npz", **arrays)
    assert "array 'W1' is missing" in runner.invoke(cli, ["eval", str(run)]).stderr
    (run / "weights.npz").write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(cli, ["eval", str(run)])
    assert result.exit_code == 1 and "unreadable" in result.stderr


def test_eval_on_another_dataset_of_another_shape(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    fit(runner, tiny, tmp_path / "run")
    other = write_dataset(tmp_path / "other", shape=(5, 5))
    result = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--dataset", str(other)])
    assert result.exit_code == 1 and "takes 64 inputs" in result.stderr
    same = write_dataset(tmp_path / "same", seed=5)
    result = runner.invoke(cli, ["eval", str(tmp_path / "run"), "--dataset", str(same), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["dataset"] == str(same)


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_is_in_the_reference(path: tuple[str, ...]) -> None:
    reference = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert f"mlptrain {' '.join(path)}" in reference


def test_every_config_key_is_in_the_config_page() -> None:
    from mlptrain.config import FIELDS

    page = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `--")]
    for key in FIELDS:
        flag = f"`--{key.replace('_', '-')}"
        assert any(flag in row and f"`{key}`" in row for row in rows), key


def test_default_run_names_carry_the_init_scale(runner: CliRunner, tiny: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for r in ("0.01", "0.1"):
        result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "1",
                                     "--val-size", "30", "--init-range", r, "--quiet"])
        assert result.exit_code == 0, result.output
    names = sorted(p.name.split("-", 2)[2] for p in (tmp_path / "runs").iterdir())
    assert names == ["relu-uniform-r0.01", "relu-uniform-r0.1"]


def test_a_close_dataset_name_is_suggested_before_any_output(runner: CliRunner) -> None:
    for given, meant in (("fashion", "fashion-mnist"), ("mnist/", "mnist"), ("kmnst", "kmnist")):
        result = runner.invoke(cli, ["fit", "--dataset", given])
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr == (f"Error: --dataset {given!r} is neither a known data set ({', '.join(DATASETS)}) "
                                 f"nor an existing path; did you mean {meant!r}?\n")


@pytest.mark.parametrize("text, shown", [("nesterov: \n", "nothing (an empty value)"),
                                         ("lr: yes\n", "a boolean (true)")])
def test_yaml_booleans_and_empty_values_are_named_as_such(runner: CliRunner, tmp_path: Path, text: str,
                                                         shown: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = runner.invoke(cli, ["fit", "--config", str(config)])
    assert result.exit_code == 2 and f"got {shown}, expected" in result.stderr


def test_plot_out_with_one_run_writes_it_and_a_file_is_not_a_run(runner: CliRunner, tiny: Path,
                                                                 tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert runner.invoke(cli, ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "2", "--val-size", "30",
                               "--quiet", "--out", str(run)]).exit_code == 0
    result = runner.invoke(cli, ["plot", str(run), "--out", str(tmp_path / "single.png")])
    assert result.exit_code == 0 and (tmp_path / "single.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {tmp_path / 'single.png'}" in result.output
    assert not list(run.glob("*.png"))  # --out writes that file only
    result = runner.invoke(cli, ["plot", str(run), "--out", str(tmp_path / "no-such-dir" / "x.png")])
    assert result.exit_code == 2 and "is not a directory that exists" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(cli, ["plot", str(run / "config.yaml")])
    assert result.exit_code == 1 and "is a file, not a run directory" in result.stderr


def test_best_epoch_is_a_percentage_and_one_epoch_reads_right(runner: CliRunner, tiny: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["fit", "--dataset", str(tiny), "--hidden", "8", "--epochs", "1", "--val-size", "30",
                                 "--out", str(tmp_path / "run")])
    assert "stopped: completed its one epoch" in result.stdout
    assert re.search(r"best epoch: 1 \(val acc \d+\.\d\d%\)", result.stdout), result.stdout
    inspected = runner.invoke(cli, ["inspect", str(tmp_path / "run")])
    assert re.search(r"^training .*, batch \d+, 1 epoch$", inspected.stdout, re.M), inspected.stdout
