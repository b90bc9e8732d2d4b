"""TensorBoard events: fit --tensorboard, a sweep's trials and mlptrain tensorboard, read back by TensorBoard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli

from synthetic import write_dataset

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

FIT_FAST = ["--hidden", "16", "--epochs", "3", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]


def events(run_dir: Path):
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def session_hparams(accumulator) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for key, value in data.session_start_info.hparams.items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def pair(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same run without and with --tensorboard."""
    root = tmp_path_factory.mktemp("tb")
    for name, extra in (("plain", []), ("tb", ["--tensorboard"])):
        result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(root / name), *extra])
        assert result.exit_code == 0, result.output
    return root / "plain", root / "tb"


def test_fit_tensorboard_writes_the_scalars_config_and_hparams(pair: tuple[Path, Path]) -> None:
    run = pair[1]
    accumulator = events(run)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    scalars = accumulator.Tags()["scalars"]
    for tag, key in (("loss/train", "train_loss"), ("accuracy/val", "val_acc"), ("lr", "lr")):
        assert [e.step for e in accumulator.Scalars(tag)] == [1, 2, 3]
        assert [e.value for e in accumulator.Scalars(tag)] == pytest.approx([m[key] for m in history], rel=1e-6)
    for key in ("signal", "gain", "dead", "update_ratio"):
        values = [e.value for e in accumulator.Scalars(f"layers/hidden1/{key}")]
        assert values == pytest.approx([m["layers"][0][key] for m in history], rel=1e-6, abs=1e-12)
    batches = accumulator.Scalars("loss/train_batches")
    assert len(batches) >= 3 and batches[-1].step == 3 * 9  # 270 training images in batches of 32, 3 epochs
    assert accumulator.Scalars("test/accuracy")[0].value == pytest.approx(summary["test"]["accuracy"])
    assert "hparams/best_val_acc" in scalars
    text = accumulator.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "activation: relu" in text and "hidden:\n- 16" in text
    hparams = session_hparams(accumulator)
    assert hparams["activation"] == "relu" and hparams["hidden"] == "16" and hparams["lr"] == pytest.approx(0.1)


def test_tensorboard_does_not_change_the_run(pair: tuple[Path, Path]) -> None:
    plain, tb = pair
    with np.load(plain / "weights.npz") as a, np.load(tb / "weights.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    timing = ("seconds", "wall_seconds", "run_dir", "command")

    def without(value):
        if isinstance(value, dict):
            return {k: without(v) for k, v in value.items() if k not in timing}
        return [without(v) for v in value] if isinstance(value, list) else value

    summaries = [json.loads((run / "summary.json").read_text()) for run in pair]
    assert summaries[0]["config"].pop("tensorboard") is False and summaries[1]["config"].pop("tensorboard") is True
    assert without(summaries[0]) == without(summaries[1])
    assert not list(plain.glob("events.out.tfevents.*"))


def test_a_sweeps_trials_carry_their_hparams(tiny: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), "hidden": [8], "epochs": 1, "val_size": 30,
                                         "tensorboard": True},
                                "grid": {"activation": ["tanh", "relu"]}}))
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    found = {}
    for trial in sorted(p for p in (tmp_path / "sw").iterdir() if p.is_dir()):
        accumulator = events(trial)
        found[trial.name] = session_hparams(accumulator)["activation"]
        assert "hparams/test_acc" in accumulator.Tags()["scalars"]
    assert found == {"activation=relu,seed=0": "relu", "activation=tanh,seed=0": "tanh"}


def test_tensorboard_command_writes_events_for_earlier_runs(pair: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    run = shutil.copytree(pair[0], tmp_path / "plain")
    result = CliRunner().invoke(cli, ["tensorboard", str(run)])
    assert result.exit_code == 0, result.output
    accumulator = events(run)
    assert [e.step for e in accumulator.Scalars("accuracy/train")] == [1, 2, 3]
    assert session_hparams(accumulator)["activation"] == "relu"
    again = CliRunner().invoke(cli, ["tensorboard", str(run)])
    assert again.exit_code == 0 and "skipped (it has event files already)" in again.stderr


def test_without_the_extra_it_says_how_to_install_it(tiny: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX now raises ImportError
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(tmp_path / "r"),
                                      "--tensorboard"])
    assert result.exit_code == 1 and result.stderr.splitlines()[-1].startswith("Error: tensorboard: true needs")
    assert result.stderr.count("Error") == 1 and "pip install 'mlptrain[tensorboard]'" in result.output
    assert not (tmp_path / "r").exists()
    result = CliRunner().invoke(cli, ["tensorboard", str(tmp_path)])
    assert result.exit_code == 1 and "pip install 'mlptrain[tensorboard]'" in result.output


def test_a_diverged_run_still_gets_its_hparams_session(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "diverged"
    diverging = ["--hidden", "64,64,64", "--init-range", "100", "--lr", "10"]
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, *diverging, "--out", str(out),
                                      "--tensorboard"])
    assert result.exit_code == 1 and "diverged" in result.output
    accumulator = events(out)
    assert session_hparams(accumulator)["init_range"] == pytest.approx(100.0)
    assert "_hparams_/session_end_info" in accumulator.PluginTagToContent("hparams")
