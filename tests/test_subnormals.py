"""No subnormal floats in the training state: the flush, and training cases whose gradients stop for good."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlptrain.config import build_config, default_init
from mlptrain.data.loading import Dataset, load_dataset
from mlptrain.nn import optimizers
from mlptrain.nn.optimizers import OPTIMIZERS
from mlptrain.nn.schedules import SCHEDULES
from mlptrain.nn.subnormals import count_subnormals, flush_subnormals
from mlptrain.train.trainer import Trainer

from synthetic import write_dataset

SEEN_AT_MOST = 16  # pixel 0's row of W0 (8 units) in two moments: what turned subnormal since the last flush


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_zeroes_subnormals_only_and_keeps_the_sign_of_zeros(dtype) -> None:
    tiny = np.finfo(dtype).tiny
    x = np.array([tiny / 3, -tiny / 5, tiny, -tiny, 1.5, -0.0, 0.0, np.inf, np.nan, tiny * 0.999], dtype)
    assert count_subnormals([x]) == 3
    before = x.copy()
    flush_subnormals(x, np.empty_like(x))
    assert count_subnormals([x]) == 0
    np.testing.assert_array_equal(x[[0, 1, 9]], 0.0)
    np.testing.assert_array_equal(x[2:9], before[2:9])
    assert list(np.signbit(x[[1, 5, 6]])) == [True, True, False]  # -sub -> -0, -0 stays -0, 0 stays 0


def test_flush_leaves_arrays_that_are_not_floats_alone() -> None:
    x = np.arange(5)
    flush_subnormals(x)
    np.testing.assert_array_equal(x, np.arange(5))
    assert count_subnormals([x]) == 0


# --- training: a feature that is lit only in the first epoch -----------------------------------------
# After epoch 1 its weights' gradients are exactly 0 for good, so their optimizer state decays
# geometrically from a normal value into (and, for factors above ~0.75, stuck in) the subnormal range.
# Decays of 0.8 instead of 0.9/0.999 get there in a few hundred steps rather than thousands.

OPTIMIZER_CASES = {
    "sgd": {"optimizer": "sgd", "momentum": 0.8},
    "sgd-nesterov": {"optimizer": "sgd", "momentum": 0.8, "nesterov": True},
    "sgd-small-momentum": {"optimizer": "sgd", "momentum": 0.05},
    "sgd-no-momentum": {"optimizer": "sgd", "momentum": 0.0},
    "adam": {"optimizer": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.8},
    "adamw": {"optimizer": "adamw", "lr": 0.01, "beta1": 0.8, "beta2": 0.8},
}
FEATURES = {
    "plain": {},
    "dropout": {"dropout": 0.3, "input_dropout": 0.1},
    "weight-decay": {"weight_decay": 0.05},
    "max-norm": {"max_norm": 0.5},
    **{f"schedule-{name}": {"lr_schedule": name, "warmup_epochs": 1, "lr_min": 0.0} for name in SCHEDULES},
}
assert {case["optimizer"] for case in OPTIMIZER_CASES.values()} == set(OPTIMIZERS), "a case per optimizer"


@pytest.fixture(scope="module")
def lit_then_dark(tmp_path_factory) -> Dataset:
    """The synthetic set (8x8 images, 1200 training images) with pixel 0 lit brightly in every image."""
    data = load_dataset(write_dataset(tmp_path_factory.mktemp("data"), n_train=1200), "tiny")
    images = data.train_images.copy()
    images[:, 0] = 255
    return dataclasses.replace(data, train_images=images)


def train(data: Dataset, values: dict, epochs: int = 3) -> Trainer:
    """Train with pixel 0 lit in epoch 1 and dark (0 in every image) from epoch 2 on."""
    base = {"dataset": "tiny", "hidden": [8], "epochs": epochs, "val_size": 50, "batch_size": 4, "lr": 0.05}
    trainer = Trainer(default_init(build_config(base | values)), dataclasses.replace(data))
    trainer.data = dataclasses.replace(trainer.data, train_images=trainer.data.train_images.copy())
    trainer.run_epoch()
    trainer.data.train_images[:, 0] = 0  # dark from now on: its gradients are exactly 0
    while not trainer.finished:
        trainer.run_epoch()
    return trainer


def subnormals(trainer: Trainer) -> dict[str, int]:
    counts = {name: count_subnormals(arrays) for name, arrays in trainer.optimizer.state().items()}
    return counts | {"parameters": count_subnormals(trainer.net.parameters())}


@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_no_subnormal_is_left_in_the_state_or_the_parameters(lit_then_dark, case: str, feature: str) -> None:
    trainer = train(lit_then_dark, OPTIMIZER_CASES[case] | FEATURES[feature])
    assert all(np.isfinite(p).all() for p in trainer.net.parameters())
    assert subnormals(trainer) == dict.fromkeys([*trainer.optimizer.state(), "parameters"], 0)


@pytest.mark.parametrize("case", ["sgd-nesterov", "adam", "adamw"])
def test_without_the_flush_the_same_runs_end_with_subnormals(lit_then_dark, case: str, monkeypatch) -> None:
    """The case above is one that needs the flush: with it switched off, subnormals stay in the state."""
    monkeypatch.setattr(optimizers, "flush_subnormals", lambda x, scratch=None: None)
    trainer = train(lit_then_dark, OPTIMIZER_CASES[case])
    assert sum(subnormals(trainer).values()) > 0


@pytest.mark.parametrize("case", ["sgd-nesterov", "adamw"])
def test_the_per_step_schedule_keeps_subnormals_rare_within_an_epoch(lit_then_dark, case: str, monkeypatch) -> None:
    """Counted just before each end-of-epoch flush: what the flush every FLUSH_EVERY steps left in."""
    values = OPTIMIZER_CASES[case]
    kind = type(OPTIMIZERS[values["optimizer"]]([np.zeros(1)], optimizers.Hyper()))  # SGD or Adam
    flush, seen = kind.flush, []

    def counted(self, params):
        seen.append(count_subnormals([*params, *(a for arrays in self.state().values() for a in arrays)]))
        flush(self, params)

    monkeypatch.setattr(kind, "flush", counted)
    train(lit_then_dark, values, epochs=3)
    assert len(seen) == 3 and max(seen) <= SEEN_AT_MOST, seen
