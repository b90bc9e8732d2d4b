"""Optimizers, regularization, schedules, early stopping, checkpoints and resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from trainkit import whole_and_resumed

from mlptrain.cli import cli
from mlptrain.config import build_config, default_init
from mlptrain.data.loading import load_dataset
from mlptrain.errors import ConfigError
from mlptrain.nn.initializers import get_initializer
from mlptrain.nn.network import (
    Workspace,
    apply_max_norm,
    dropout_masks,
    forward,
    init_network,
    l2_penalty,
    loss_and_gradients,
    softmax_cross_entropy,
)
from mlptrain.nn.optimizers import OPTIMIZERS, SGD, Adam, Hyper, make_optimizer
from mlptrain.nn.schedules import SCHEDULES, ScheduleParams, lr_at
from mlptrain.train.trainer import Trainer, fit

from synthetic import write_dataset


def small_net(seed: int = 0, sizes=(5, 4, 3, 3)):
    rng = np.random.default_rng(seed)
    net = init_network(list(sizes), "tanh", get_initializer("glorot-normal"), rng, bias_init=0.1, dtype=np.float64)
    return net, rng.normal(size=(6, sizes[0])), rng.integers(0, sizes[-1], size=6)


def numeric_gradients(net, objective) -> list[np.ndarray]:
    eps, out = 1e-6, []
    for param in net.parameters():
        numeric = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            plus = objective()
            param[i] = saved - eps
            minus = objective()
            param[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        out.append(numeric)
    return out


def test_gradient_with_weight_decay_matches_the_penalised_loss() -> None:
    net, x, y = small_net()
    _, grads, _ = loss_and_gradients(net, x, y, weight_decay=0.3)
    numeric = numeric_gradients(net, lambda: softmax_cross_entropy(forward(net, x).logits, y)[0] + l2_penalty(net, 0.3))
    for g, n in zip(grads, numeric):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)


def test_gradient_with_label_smoothing_matches_the_smoothed_loss() -> None:
    net, x, y = small_net()
    loss, grads, logits = loss_and_gradients(net, x, y, label_smoothing=0.2)
    # The smoothed loss written out: cross-entropy against (0.8 onehot + 0.2 / 3).
    def smoothed() -> float:
        z = forward(net, x).logits
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        target = np.full(log_p.shape, 0.2 / 3)
        target[np.arange(len(y)), y] += 0.8
        return float(-(target * log_p).sum(axis=1).mean())

    assert loss == pytest.approx(smoothed(), rel=1e-12)
    for g, n in zip(grads, numeric_gradients(net, smoothed)):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)
    plain, _, _ = loss_and_gradients(net, x, y)
    assert plain == softmax_cross_entropy(logits, y)[0] != loss


def test_gradient_with_a_fixed_dropout_mask() -> None:
    net, x, y = small_net()
    masks = dropout_masks(net, len(x), 0.3, 0.5, np.random.default_rng(3))
    assert all(m is not None for m in masks) and set(np.unique(masks[1])) <= {0.0, 2.0}
    _, grads, _ = loss_and_gradients(net, x, y, masks=masks)
    numeric = numeric_gradients(net, lambda: softmax_cross_entropy(forward(net, x, masks).logits, y)[0])
    for g, n in zip(grads, numeric):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)


def test_dropout_keeps_the_expected_input_and_is_off_at_rate_zero() -> None:
    net, _, _ = small_net(sizes=(400, 300, 3))
    masks = dropout_masks(net, 200, 0.0, 0.5, np.random.default_rng(0))
    assert masks[0] is None and masks[1].mean() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_lowers_the_loss(name: str) -> None:
    net, x, y = small_net()
    optimizer = make_optimizer(name, net.parameters(), Hyper(weight_decay=0.01))
    before = loss_and_gradients(net, x, y)[0]
    for _ in range(50):
        _, grads, _ = loss_and_gradients(net, x, y)
        optimizer.step(net.parameters(), grads, 0.01)
    assert loss_and_gradients(net, x, y)[0] < before * 0.9


def test_sgd_momentum_and_nesterov_steps_by_hand() -> None:
    p, g1, g2 = np.array([1.0]), np.array([0.5]), np.array([0.25])
    sgd = SGD([p], Hyper(momentum=0.9))
    sgd.step([p], [g1.copy()], 0.1)  # v = -0.05
    sgd.step([p], [g2.copy()], 0.1)  # v = 0.9 * -0.05 - 0.025 = -0.07
    assert p[0] == pytest.approx(1.0 - 0.05 - 0.07)
    q = np.array([1.0])
    nesterov = SGD([q], Hyper(momentum=0.9, nesterov=True))
    nesterov.step([q], [g1.copy()], 0.1)  # v = -0.05; q += 0.9 * v - lr g = -0.045 - 0.05
    assert q[0] == pytest.approx(1.0 - 0.095)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("nesterov", [False, True])
def test_prescaled_gradients_give_the_same_step(name: str, nesterov: bool) -> None:
    """The trainer hands each optimizer gradients already multiplied by its grad_scale(lr)."""
    rng = np.random.default_rng(0)
    start, hyper = rng.normal(size=(3, 4)), Hyper(momentum=0.9, nesterov=nesterov)
    plain, prescaled = start.copy(), start.copy()
    opt_plain = make_optimizer(name, [plain], hyper)
    opt_prescaled = make_optimizer(name, [prescaled], hyper)
    for lr in (0.1, 0.05, 0.02):
        g = rng.normal(size=(3, 4))
        opt_plain.step([plain], [g.copy()], lr)
        opt_prescaled.step([prescaled], [g * opt_prescaled.grad_scale(lr)], lr, prescaled=True)
    np.testing.assert_allclose(prescaled, plain, rtol=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_backward_accumulates_into_the_gradient_arrays(weight_decay: float) -> None:
    """grad_beta: each gradient array becomes beta * what it held + the scaled gradient."""
    net, x, y = small_net()
    _, plain, _ = loss_and_gradients(net, x, y, weight_decay)
    held = [np.random.default_rng(i).normal(size=p.shape) for i, p in enumerate(net.parameters())]
    workspace = Workspace(net, rows=len(x), grads=[h.copy() for h in held])
    _, grads, _ = loss_and_gradients(net, x, y, weight_decay, workspace=workspace, grad_scale=-0.1, grad_beta=0.9)
    for g, h, p in zip(grads, held, plain):
        np.testing.assert_allclose(g, 0.9 * h - 0.1 * p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_sgd_accumulated_in_backward_matches_the_plain_update(momentum: float) -> None:
    """The trainer's route (velocity folded into the products, step p += v) against the textbook one."""
    net, x, y = small_net()
    ref, _, _ = small_net()
    hyper = Hyper(momentum=momentum)
    sgd, sgd_ref = SGD(net.parameters(), hyper), SGD(ref.parameters(), hyper)
    velocity, beta = sgd.accumulator()
    workspace = Workspace(net, rows=len(x), grads=velocity)
    for lr in (0.1, 0.05, 0.02):
        _, grads, _ = loss_and_gradients(net, x, y, 0.01, workspace=workspace, grad_scale=sgd.grad_scale(lr),
                                         grad_beta=beta)
        assert all(g is v for g, v in zip(grads, velocity))  # the velocity is the gradient buffer
        sgd.step(net.parameters(), grads, lr, prescaled=True, accumulated=True)
        _, plain, _ = loss_and_gradients(ref, x, y, 0.01)
        sgd_ref.step(ref.parameters(), plain, lr)
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12)


@pytest.mark.parametrize("accumulate", [False, True])
def test_scaled_velocity_follows_the_textbook_recurrence_across_syncs(accumulate: bool) -> None:
    """mu = 0.5 halves the scale each step: it falls below SYNC_BELOW and is folded back in twice in 25 steps."""
    rng = np.random.default_rng(3)
    p = rng.normal(size=(4, 3))
    ref_p, ref_v = p.copy(), np.zeros_like(p)
    sgd = SGD([p], Hyper(momentum=0.5))
    for t in range(25):
        g, lr = rng.normal(size=p.shape), 0.1 / (1 + t % 4)  # a changing lr, as schedules give
        ref_v = 0.5 * ref_v - lr * g
        ref_p += ref_v
        if accumulate:  # as backward does it: the velocity array takes the scaled gradient
            sgd.accumulator()[0][0] += sgd.grad_scale(lr) * g
            sgd.step([p], sgd.velocity, lr, prescaled=True, accumulated=True)
        else:
            sgd.step([p], [g.copy()], lr)
    np.testing.assert_allclose(p, ref_p, rtol=1e-12)
    np.testing.assert_allclose(sgd.state()["velocity"][0], ref_v, rtol=1e-12)


def test_which_optimizers_accumulate() -> None:
    params = [np.zeros(3)]
    assert SGD(params, Hyper()).accumulator()[1] == 1.0  # the scaled velocity only adds
    assert SGD(params, Hyper(momentum=0.0)).accumulator()[1] == 0.0  # v is the step: overwrite
    nesterov = SGD(params, Hyper(nesterov=True))
    assert nesterov.accumulator() is None  # its step needs the gradient alone
    with pytest.raises(ValueError, match="plain gradients"):
        nesterov.step(params, [np.ones(3)], 0.1, prescaled=True, accumulated=True)
    adam = Adam(params, Hyper())
    assert adam.accumulator() is None
    with pytest.raises(ValueError, match="plain gradients"):
        adam.step(params, [np.ones(3)], 0.1, accumulated=True)


def test_trainer_accumulates_sgd_and_lands_where_plain_gradients_do(tiny_data, monkeypatch) -> None:
    cfg = config(weight_decay=1e-3, epochs=3)
    fused = fit(cfg, tiny_data)
    assert fused.grad_beta == 1.0 and fused.workspace.buffers(32).grads[0] is fused.optimizer.velocity[0]
    monkeypatch.setattr(SGD, "accumulator", lambda self: None)
    plain = fit(cfg, tiny_data)
    assert plain.grad_beta == 0.0
    for a, b in zip(fused.net.parameters(), plain.net.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_adam_and_adamw_first_step_by_hand() -> None:
    # Step 1 of Adam moves each parameter by lr * g / (|g| + eps) ~ lr * sign(g).
    w, b = np.array([[2.0]]), np.array([1.0])
    adam = Adam([w, b], Hyper())
    adam.step([w, b], [np.array([[0.3]]), np.array([-0.2])], 0.01)
    assert w[0, 0] == pytest.approx(2.0 - 0.01, rel=1e-6) and b[0] == pytest.approx(1.0 + 0.01, rel=1e-6)
    w, b = np.array([[2.0]]), np.array([1.0])
    adamw = make_optimizer("adamw", [w, b], Hyper(weight_decay=0.5))
    adamw.step([w, b], [np.array([[0.3]]), np.array([-0.2])], 0.01)
    # decoupled decay shrinks the weight (not the bias) by lr * wd * w first
    assert w[0, 0] == pytest.approx(2.0 * (1 - 0.005) - 0.01, rel=1e-6) and b[0] == pytest.approx(1.01, rel=1e-6)


def test_adam_matches_the_textbook_formula_over_steps() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(size=4)
    ref, m, v = p.copy(), np.zeros(4), np.zeros(4)
    adam = Adam([p], Hyper(beta1=0.8, beta2=0.99, eps=1e-3))
    for t in range(1, 6):
        g = rng.normal(size=4)
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        ref -= 0.05 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-3)
        adam.step([p], [g.copy()], 0.05)
    np.testing.assert_allclose(p, ref, rtol=1e-12)


def test_max_norm_caps_each_units_incoming_weights() -> None:
    net, _, _ = small_net()
    net.weights[0] *= 10
    apply_max_norm(net, 0.5)
    norms = np.linalg.norm(net.weights[0], axis=0)
    assert norms.max() <= 0.5 + 1e-12
    small = net.weights[1] * 0 + 0.01
    net.weights[1][...] = small
    apply_max_norm(net, 0.5)
    np.testing.assert_array_equal(net.weights[1], small)  # under the cap: untouched


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [0.1] * 6),
        ("step", [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
        ("exponential", [0.1 * 0.5**e for e in range(6)]),
        ("cosine", [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * e / 5)) for e in range(6)]),
    ],
)
def test_schedules_give_the_documented_lr(schedule: str, expected: list[float]) -> None:
    params = ScheduleParams(lr=0.1, epochs=6, lr_step=2, lr_gamma=0.5, lr_min=0.01)
    assert [lr_at(schedule, e, params) for e in range(6)] == pytest.approx(expected)


def test_warmup_then_schedule() -> None:
    params = ScheduleParams(lr=0.1, epochs=6, warmup_epochs=2, lr_min=0.0)
    lrs = [lr_at("cosine", e, params) for e in range(6)]
    assert lrs[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1]) and lrs[-1] == pytest.approx(0.0)


def test_every_schedule_is_a_config_choice() -> None:
    for name in SCHEDULES:
        assert build_config({"lr_schedule": name}).lr_schedule == name


@pytest.mark.parametrize(
    "values, message",
    [
        ({"nesterov": True, "optimizer": "adam"}, "nesterov needs optimizer sgd"),
        ({"patience": 3, "val_size": 0}, "patience .* needs a validation set"),
        ({"warmup_epochs": 5, "epochs": 5}, "leaves no epoch"),
        ({"lr_schedule": "cosine", "lr_min": 0.1, "lr": 0.05}, "lr_min 0.1 must be below"),
        ({"nesterov": "yes"}, "invalid nesterov"),
        ({"dropout": 1.0}, "invalid dropout"),
        ({"max_norm": 0}, "invalid max_norm"),
    ],
)
def test_inconsistent_training_settings(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(values)


# --- the trainer: early stopping, checkpoints, resume -------------------------------------


@pytest.fixture
def tiny_data(tmp_path: Path):
    return load_dataset(write_dataset(tmp_path / "tiny"), "tiny")


def config(**values):
    base = {"dataset": "tiny", "hidden": [16], "epochs": 6, "val_size": 30, "batch_size": 32, "lr": 0.1}
    return default_init(build_config(base | values))


def test_early_stopping_stops_and_restores_the_best_weights(tiny_data) -> None:
    # lr 0 after a good first epoch: nothing can improve, so patience 2 stops at epoch 3.
    trainer = Trainer(config(patience=2, lr_schedule="step", lr_step=1, lr_gamma=1e-9, epochs=10), tiny_data)
    while not trainer.finished:
        trainer.run_epoch()
        if trainer.progress.epoch == 1:
            best = [p.copy() for p in trainer.net.parameters()]
            trainer.net.weights[0] += 0.5  # spoil the weights after the best epoch
    assert trainer.progress.epoch == 3 and trainer.progress.best_epoch == 1
    assert "early stopping: val_acc did not improve" in trainer.progress.stop_reason
    for kept, saved in zip(trainer.final_network().parameters(), best):
        np.testing.assert_array_equal(kept, saved)


@pytest.mark.parametrize("patience, words", [(1, "for 1 epoch"), (2, "for 2 epochs")])
def test_the_early_stopping_reason_counts_its_epochs_right(tiny_data, patience: int, words: str) -> None:
    trainer = Trainer(config(patience=patience, lr_schedule="step", lr_step=1, lr_gamma=1e-9, epochs=10), tiny_data)
    while not trainer.finished:
        trainer.run_epoch()
    assert trainer.progress.stop_reason.endswith(words), trainer.progress.stop_reason


@pytest.mark.parametrize(
    "values",
    [{}, {"optimizer": "adamw", "weight_decay": 0.01, "lr": 0.01}, {"dropout": 0.3, "input_dropout": 0.1,
     "max_norm": 2.0, "lr_schedule": "cosine", "warmup_epochs": 1, "nesterov": True, "patience": 10},
     {"augment": "affine,elastic", "optimizer": "adam", "lr": 0.01, "dropout": 0.2},
     {"augment": "shift", "label_smoothing": 0.1}],
    ids=["sgd", "adamw", "everything", "augment-affine-elastic", "augment-shift-smoothing"],
)
def test_restored_trainer_continues_exactly(tiny_data, values: dict) -> None:
    whole, second = whole_and_resumed(config(**values), tiny_data, epochs_before=3)
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in whole.progress.history]
    assert [{k: v for k, v in m.items() if k != "seconds"} for m in second.progress.history] == strip
    for a, b in zip(whole.final_network().parameters(), second.final_network().parameters()):
        np.testing.assert_array_equal(a, b)


class Interrupt(Exception):
    pass


def test_cli_resume_equals_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    runner = CliRunner()
    args = ["fit", "--dataset", str(tiny), "--hidden", "16", "--epochs", "5", "--val-size", "30",
            "--batch-size", "32", "--dropout", "0.2", "--optimizer", "adam", "--lr", "0.01", "--quiet"]
    assert runner.invoke(cli, [*args, "--out", str(tmp_path / "whole")]).exit_code == 0

    from mlptrain import experiment

    real = experiment.save_checkpoint

    def crash_after_epoch_2(run_dir: Path, arrays) -> None:
        real(run_dir, arrays)
        if json.loads(str(arrays["state_json"]))["progress"]["epoch"] == 2:
            raise Interrupt

    monkeypatch.setattr(experiment, "save_checkpoint", crash_after_epoch_2)
    result = runner.invoke(cli, [*args, "--out", str(tmp_path / "cut")])
    assert isinstance(result.exception, Interrupt)
    assert not (tmp_path / "cut" / "summary.json").exists() and (tmp_path / "cut" / "checkpoint.npz").exists()
    monkeypatch.setattr(experiment, "save_checkpoint", real)

    result = runner.invoke(cli, ["fit", "--resume", str(tmp_path / "cut"), "--quiet"])
    assert result.exit_code == 0, result.output

    def read(run: str) -> tuple[list[dict], dict]:
        rows = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        with np.load(tmp_path / run / "weights.npz") as npz:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows], {k: npz[k] for k in npz.files}

    (whole_rows, whole_w), (cut_rows, cut_w) = read("whole"), read("cut")
    assert cut_rows == whole_rows and len(cut_rows) == 5
    for key in whole_w:
        np.testing.assert_array_equal(whole_w[key], cut_w[key])
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["resumed"] is True and not (tmp_path / "cut" / "checkpoint.npz").exists()


def test_resume_refuses_a_different_config_and_a_finished_run(tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    runner = CliRunner()
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.yaml").write_text(f"dataset: {tiny}\nhidden: [16]\nepochs: 3\nval_size: 30\ninit: he-normal\n")
    result = runner.invoke(cli, ["fit", "--resume", str(run), "--epochs", "4", "--lr", "0.2"])
    assert result.exit_code == 2
    assert "different config: lr (run: 0.05, now: 0.2); epochs (run: 3, now: 4)" in result.stderr
    result = runner.invoke(cli, ["fit", "--resume", str(run), "--epochs", "3", "--quiet"])  # same value: fine
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["fit", "--resume", str(run)])
    assert result.exit_code == 2 and "already complete" in result.stderr
    result = runner.invoke(cli, ["fit", "--resume", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def _wait_for(path: Path, process, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out waiting for the first checkpoint"
        time.sleep(0.02)


@pytest.mark.parametrize("signum, status, name", [(2, 130, "Ctrl-C"), (15, 143, "SIGTERM")])
def test_signal_during_fit_leaves_a_resumable_run(tmp_path: Path, signum: int, status: int, name: str) -> None:
    """SIGINT/SIGTERM: exit 130/143, say how to resume, and the resumed run equals an uninterrupted one."""
    import subprocess
    import sys

    tiny = write_dataset(tmp_path / "tiny", n_train=2000)
    args = [sys.executable, "-m", "mlptrain", "fit", "--dataset", str(tiny), "--hidden", "32", "--epochs", "40",
            "--val-size", "100", "--batch-size", "16", "--threads", "1", "--quiet"]
    run = tmp_path / "run"
    process = subprocess.Popen([*args, "--out", str(run)], stderr=subprocess.PIPE, text=True)
    _wait_for(run / "checkpoint.npz", process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert f"interrupted by {name} after epoch" in stderr and f"mlptrain fit --resume {run}" in stderr
    assert "Traceback" not in stderr and not (run / "summary.json").exists()
    with np.load(run / "checkpoint.npz", allow_pickle=False) as npz:
        done = json.loads(str(npz["state_json"]))["progress"]["epoch"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == done  # metrics match the checkpoint

    assert subprocess.run([*args[:3], "fit", "--resume", str(run), "--threads", "1", "--quiet"]).returncode == 0
    assert subprocess.run([*args, "--out", str(tmp_path / "whole")]).returncode == 0

    def rows(path: Path) -> list[dict]:
        lines = (path / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert rows(run) == rows(tmp_path / "whole")
