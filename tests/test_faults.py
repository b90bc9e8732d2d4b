"""The fault suite: one table row per (command, fault), run through the CLI in this process.

Each row gives the command line, the fault (set up by damaging a file or making a call fail or be
interrupted), the exit status, a fragment the single ``Error:`` line must hold, and what may change: by
default nothing, checked by hashing every file of the run, the unfinished run, the sweep, the inputs and
the data cache before and after. No row may leave a temporary file, and ``absent`` paths (outputs the
command would have made) must not exist afterwards. Every command ``mlptrain --help`` lists has a row
(``test_every_command_has_a_row``): a new command without one fails.

Signals are raised inside the command (``Terminated`` is what ``main`` turns SIGTERM into); real
signals to real processes are in test_signals.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mlptrain import experiment
from mlptrain.cli import cli
from mlptrain.data import datasets
from mlptrain.data.datasets import FILE_NAMES, DatasetSpec, RemoteFile
from mlptrain.errors import Terminated

from faultkit import leaf_commands, one_error, temporaries, tree_hashes
from synthetic import write_dataset

NAME = "faulty"  # the fake data set of the data commands
FIT = ["--hidden", "8", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--init", "he-normal",
       "--threads", "1", "--quiet"]
KEPT = ("run", "partial", "sweep", "inputs", "cache", "tiny")  # the directories hashed before and after


# --- the world every row runs in ------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """Built once: a finished run (augmented, evaluated), its state after epoch 1, a sweep, inputs, a cache."""

    root: Path
    first_checkpoint: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("faults")
    tiny = write_dataset(root / "tiny")
    first: dict[str, np.ndarray] = {}
    real = experiment.save_checkpoint

    def keep_first(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
        real(run_dir, arrays)
        first.setdefault("done", np.array(True))
        if len(first) == 1:
            first.update({key: np.array(value, copy=True) for key, value in arrays.items()})

    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "save_checkpoint", keep_first)
        result = runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "2", "--augment", "shift",
                                     "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli, ["eval", str(root / "run"), "--quiet"]).exit_code == 0
    first.pop("done")
    spec = root / "spec.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), "hidden": [4], "epochs": 1, "val_size": 30,
                                         "batch_size": 64, "init": "he-normal"}, "grid": {"lr": [0.05, 0.1]}}))
    result = runner.invoke(cli, ["sweep", str(spec), "--out", str(root / "sweep"), "--workers", "1", "--threads",
                                 "1", "--quiet"])
    assert result.exit_code == 0, result.output
    inputs = root / "inputs"
    inputs.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.save(inputs / "three.npy", pixels)
    Image.fromarray(pixels[0]).save(inputs / "digit.png")
    return Base(root, first)


@dataclass
class World:
    """One row's copies of everything, and the monkeypatch its setup may use."""

    tmp: Path
    base: Base
    monkeypatch: pytest.MonkeyPatch

    def __post_init__(self) -> None:
        for name in ("run", "sweep", "inputs"):
            shutil.copytree(self.base.root / name, self.tmp / name)
        self.tiny = self.base.root / "tiny"
        self.partial = unfinished(self.run, self.tmp / "partial", self.base.first_checkpoint)
        self.source = self.tmp / "source"  # the fake data set's mirror
        write_dataset(self.source, n_train=60, n_test=20)
        payloads = {name: (self.source / name).read_bytes() for name in FILE_NAMES}
        files = tuple(RemoteFile(n, len(b), _sha256(b), None) for n, b in payloads.items())
        spec = DatasetSpec(NAME, "fault-suite data", files, (self.source.as_uri() + "/",), ("a", "b", "c"))
        self.monkeypatch.setitem(datasets.DATASETS, NAME, spec)
        self.cache = self.tmp / "cache"
        assert CliRunner().invoke(cli, ["data", "download", "--dataset", NAME, "--data-dir", str(self.cache),
                                        "--quiet"]).exit_code == 0

    @property
    def run(self) -> Path:
        return self.tmp / "run"

    @property
    def sweep(self) -> Path:
        return self.tmp / "sweep"

    def places(self) -> dict[str, str]:
        return {"tmp": str(self.tmp), "run": str(self.run), "partial": str(self.partial), "sweep": str(self.sweep),
                "spec": str(self.base.root / "spec.yaml"), "tiny": str(self.tiny), "inputs": str(self.tmp / "inputs"),
                "cache": str(self.cache), "name": NAME}

    def fill(self, text: str) -> str:
        return text.format(**self.places())

    def hashes(self) -> dict[str, dict[str, str]]:
        return {name: tree_hashes(Path(self.places()[name])) for name in KEPT}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def unfinished(run: Path, where: Path, checkpoint: dict[str, np.ndarray]) -> Path:
    """The finished ``run`` turned back into one cut after epoch 1: its checkpoint, no weights, no summary."""
    shutil.copytree(run, where)
    for name in ("summary.json", "weights.npz", "state.npz", "eval.json"):
        (where / name).unlink(missing_ok=True)
    np.savez(where / "checkpoint.npz", **checkpoint)
    return where


# --- faults -----------------------------------------------------------------------------------


def write(name: str, content: str | bytes) -> Callable[[World], None]:
    """Setup: write ``content`` to ``{tmp}/name`` (or any placeholder path)."""
    def setup(world: World) -> None:
        path = Path(world.fill(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        data = world.fill(content).encode() if isinstance(content, str) else content
        path.write_bytes(data)
    return setup


def damage_npz(name: str, key: str, value: float, everywhere: bool = False) -> Callable[[World], None]:
    """Setup: put ``value`` into one entry of array ``key`` (or all of it) of the .npz ``name``."""
    def setup(world: World) -> None:
        path = Path(world.fill(name))
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        array = arrays[key].copy()
        if everywhere:
            array[...] = value
        else:
            array.flat[0] = value
        arrays[key] = array
        np.savez(path, **arrays)
    return setup


def cut(name: str, size: int) -> Callable[[World], None]:
    """Setup: keep only the first ``size`` bytes of ``name``."""
    def setup(world: World) -> None:
        path = Path(world.fill(name))
        path.write_bytes(path.read_bytes()[:size])
    return setup


def edit(name: str, old: str, new: str) -> Callable[[World], None]:
    """Setup: replace the first ``old`` in the text of ``name`` with ``new`` (which must be there)."""
    def setup(world: World) -> None:
        path = Path(world.fill(name))
        text = path.read_text()
        old_text, new_text = world.fill(old), world.fill(new)
        assert old_text in text, (path, old_text)
        path.write_text(text.replace(old_text, new_text, 1))
    return setup


def replace_npz(name: str, key: str, array: np.ndarray) -> Callable[[World], None]:
    """Setup: array ``key`` of the .npz ``name`` becomes ``array``."""
    def setup(world: World) -> None:
        path = Path(world.fill(name))
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        np.savez(path, **{**arrays, key: array})
    return setup


def nan_tiff(world: World) -> None:
    values = np.full((8, 8), 0.5, np.float32)
    values[3, 4] = np.nan
    Image.fromarray(values, mode="F").save(world.tmp / "inputs" / "nan.tif")


def both(*setups: Callable[[World], None]) -> Callable[[World], None]:
    def setup(world: World) -> None:
        for one in setups:
            one(world)
    return setup


def raises(target: str, exc: BaseException, after: int = 0) -> Callable[[World], None]:
    """Setup: ``target`` ("module:attribute") raises ``exc`` on its call number ``after + 1`` -- a signal
    arriving there, or a disk failing there."""
    def setup(world: World) -> None:
        import importlib

        module_name, attribute = target.split(":")
        module = importlib.import_module(module_name)
        owner, name = module, attribute
        if "." in attribute:
            first, name = attribute.split(".")
            owner = getattr(module, first)
        real = getattr(owner, name)
        calls = [0]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > after:
                raise exc
            return real(*args, **kwargs)

        world.monkeypatch.setattr(owner, name, wrapper)
    return setup


def disk(error: int, after: int = 0) -> Callable[[World], None]:
    """Setup: the file system fails atomic writes with ``error`` (ENOSPC, EACCES) from the write number
    ``after + 1`` on -- simulated, since running as root a chmod stops nothing."""
    return raises("mlptrain.fsutil:os.fsync", OSError(error, os.strerror(error)), after)


@dataclass(frozen=True)
class Row:
    command: str  # its words, as `mlptrain --help` lists it: "eval", "data download"
    fault: str
    args: list[str]
    exit: int
    pattern: str  # in the one Error: line (a warning: line for exit 0), {placeholders} filled
    setup: Callable[[World], None] | None = None
    changes: tuple[str, ...] = ()  # KEPT directories this fault may change (e.g. eval.json rewritten)
    absent: tuple[str, ...] = ()  # outputs that must not exist afterwards


NEW_OUT = "{tmp}/new"
# Finite weights whose products overflow float32: 1e30 x 1e30 on the way to the logits.
OVERFLOWING = both(damage_npz("{run}/weights.npz", "W0", 1e30, everywhere=True),
                   damage_npz("{run}/weights.npz", "W1", 1e30, everywhere=True))
ROWS: list[Row] = [
    # --- 1. numbers ---
    Row("eval", "min-accuracy NaN would switch the gate off", ["eval", "{run}", "--min-accuracy", "nan"], 2,
        "--min-accuracy"),
    Row("fit", "lr infinite", ["fit", "--dataset", "{tiny}", *FIT, "--lr", "inf", "--out", NEW_OUT], 2, "--lr",
        absent=(NEW_OUT,)),
    Row("fit", "config file with .nan", ["fit", "--config", "{tmp}/c.yaml", "--out", NEW_OUT], 2,
        "invalid momentum (from {tmp}/c.yaml): got nan", write("{tmp}/c.yaml", "momentum: .nan\n"),
        absent=(NEW_OUT,)),
    Row("fit", "augmentation parameter given twice", ["fit", "--dataset", "{tiny}", *FIT, "--augment",
                                                      "elastic:alpha=3:alpha=40", "--out", NEW_OUT], 2,
        "alpha is given twice", absent=(NEW_OUT,)),
    Row("sweep", "NaN in a grid", ["sweep", "{tmp}/s.yaml", "--out", NEW_OUT], 2, "invalid lr (from {tmp}/s.yaml grid)",
        write("{tmp}/s.yaml", "base: {{dataset: {tiny}, epochs: 1}}\ngrid: {{lr: [0.1, .nan]}}\n"), absent=(NEW_OUT,)),
    Row("sweep", "a key spelled two ways", ["sweep", "{tmp}/s.yaml", "--out", NEW_OUT], 2, "given twice",
        write("{tmp}/s.yaml", "base: {{dataset: {tiny}, lr-gamma: 0.5, lr_gamma: 0.2}}\ngrid: {{lr: [0.1, 0.2]}}\n"),
        absent=(NEW_OUT,)),
    Row("init-scan", "r-max infinite", ["init-scan", "--dataset", "{tiny}", "--r-max", "inf", "--out",
                                        "{tmp}/scan.png"], 2, "--r-max", absent=("{tmp}/scan.png",)),
    Row("lr-find", "end-lr 1e400", ["lr-find", "--dataset", "{tiny}", "--end-lr", "1e400", "--out", NEW_OUT], 2,
        "--end-lr", absent=(NEW_OUT,)),
    Row("gradcheck", "delta too large to mean anything", ["gradcheck", "--dataset", "{tiny}", "--delta", "0.5"], 2,
        "--delta"),
    Row("predict", "top-k 0", ["predict", "{run}", "{inputs}/digit.png", "--top-k", "0"], 2, "--top-k"),
    Row("configs show", "no such config", ["configs", "show", "no-such-config"], 2, "no shipped config"),
    Row("runs", "--sort by a key that is not a column or config key", ["runs", "{run}", "--sort", "nope"], 2,
        "--sort: unknown key 'nope'"),
    Row("compare", "a directory that is not a run", ["compare", "{run}", "{inputs}"], 1,
        "{inputs} is not a run directory"),
    Row("tensorboard", "a directory without runs", ["tensorboard", "{inputs}"], 1, "no run directories under {inputs}"),
    Row("data import", "a source that does not exist", ["data", "import", "{tmp}/nothing", "--out", NEW_OUT], 2,
        "is neither a known data set", absent=(NEW_OUT,)),
    Row("configs list", "an argument it does not take", ["configs", "list", "extra"], 2, "unexpected extra argument"),
    Row("data list", "data dir is a file", ["data", "list", "--data-dir", "{inputs}/digit.png"], 2, "is a file"),
    # --- 2. non-finite numbers in files and results ---
    Row("eval", "NaN in weights.npz", ["eval", "{run}"], 1, "{run}/weights.npz: W1 holds NaN",
        damage_npz("{run}/weights.npz", "W1", np.nan)),
    Row("predict", "inf in weights.npz", ["predict", "{run}", "{inputs}/digit.png"], 1,
        "{run}/weights.npz: b0 holds NaN or infinite", damage_npz("{run}/weights.npz", "b0", np.inf)),
    Row("export", "NaN in weights.npz", ["export", "{run}"], 1, "{run}/weights.npz: W0 holds NaN",
        damage_npz("{run}/weights.npz", "W0", np.nan), absent=("{run}/model.onnx",)),
    Row("plot", "NaN in weights.npz", ["plot", "{run}"], 1, "{run}/weights.npz: W0 holds NaN",
        damage_npz("{run}/weights.npz", "W0", np.nan)),
    Row("fit", "resume: inf in checkpoint.npz", ["fit", "--resume", "{partial}", "--quiet"], 1,
        "{partial}/checkpoint.npz: param0 holds NaN", damage_npz("{partial}/checkpoint.npz", "param0", -np.inf)),
    Row("eval", "weights that overflow", ["eval", "{run}"], 1, "gives NaN or infinite outputs", OVERFLOWING),
    Row("predict", "weights that overflow", ["predict", "{run}", "{inputs}/three.npy", "--json"], 1,
        "gives NaN or infinite outputs for {inputs}/three.npy", OVERFLOWING),
    Row("predict", "a float TIFF holding NaN", ["predict", "{run}", "{inputs}/nan.tif"], 1,
        "{inputs}/nan.tif: pixel values that are NaN", nan_tiff),
    Row("predict", "a float TIFF holding NaN, unpreprocessed",
        ["predict", "{run}", "{inputs}/nan.tif", "--preprocess", "none", "--json"], 1, "pixel values that are NaN",
        nan_tiff),
    Row("gradcheck", "a loss that overflows", ["gradcheck", "--dataset", "{tiny}", "--val-size", "30", "--hidden",
                                              "64,64,64,64,64,64", "--init-range", "100", "--bias-init", "100"], 1,
        "NaN or infinite (the products overflow float64)"),
    # --- 4. signals, raised where the work is ---
    Row("predict", "SIGTERM while predicting", ["predict", "{run}", "{inputs}/three.npy"], 143,
        "interrupted by SIGTERM", raises("mlptrain.infer.predict:probabilities", Terminated())),
    Row("lr-find", "Ctrl-C in the range test", ["lr-find", "--dataset", "{tiny}", "--val-size", "30", "--out",
                                                NEW_OUT], 130, "interrupted by Ctrl-C",
        raises("mlptrain.train.trainer:Trainer.train_batch", KeyboardInterrupt(), after=3), absent=(NEW_OUT,)),
    Row("init-scan", "SIGTERM in the scan", ["init-scan", "--dataset", "{tiny}", "--val-size", "30", "--out",
                                             "{tmp}/scan.png"], 143, "interrupted by SIGTERM",
        raises("mlptrain.tune.initscan:_gains", Terminated(), after=2), absent=("{tmp}/scan.png",)),
    Row("gradcheck", "Ctrl-C in the check", ["gradcheck", "--dataset", "{tiny}", "--val-size", "30"], 130,
        "interrupted by Ctrl-C", raises("mlptrain.tune.gradcheck:_check_array", KeyboardInterrupt(), after=1)),
    Row("eval", "SIGTERM while evaluating", ["eval", "{run}"], 143, "interrupted by SIGTERM",
        raises("mlptrain.experiment:evaluate", Terminated())),
    Row("export", "SIGTERM while building the model", ["export", "{run}", "--out", "{tmp}/m.onnx"], 143,
        "interrupted by SIGTERM", raises("mlptrain.infer.onnx:build_model", Terminated()), absent=("{tmp}/m.onnx",)),
    Row("plot", "SIGTERM while drawing", ["plot", "{run}"], 143, "interrupted by SIGTERM",
        raises("mlptrain.plots.run:curves_figure", Terminated())),
    Row("inspect", "Ctrl-C while reading", ["inspect", "{run}"], 130, "interrupted by Ctrl-C",
        raises("mlptrain.runs.report:format_run", KeyboardInterrupt())),
    Row("data download", "SIGTERM mid-copy", ["data", "download", "--dataset", "{name}", "--data-dir",
                                              "{tmp}/fresh/cache"], 143, "interrupted by SIGTERM",
        raises("mlptrain.data.download:_fetch_local", Terminated()), absent=("{tmp}/fresh",)),
    Row("data verify", "Ctrl-C while hashing", ["data", "verify", "--data-dir", "{cache}"], 130,
        "interrupted by Ctrl-C", raises("mlptrain.data.download:cache_status", KeyboardInterrupt())),
    Row("sweep", "Ctrl-C while trials run", ["sweep", "{spec}", "--out", "{sweep}", "--workers", "1", "--quiet"], 130,
        "sweep interrupted by Ctrl-C", raises("mlptrain.sweep.executors:LocalPool.run", KeyboardInterrupt())),
    Row("fit", "SIGTERM in epoch 2", ["fit", "--dataset", "{tiny}", *FIT, "--epochs", "3", "--out", NEW_OUT], 143,
        "continue with: mlptrain fit --resume {tmp}/new",
        raises("mlptrain.train.trainer:Trainer.run_epoch", Terminated(), after=1)),
    # --- 5. writes that fail ---
    Row("plot", "--out in a missing directory", ["plot", "{run}", "{run}", "--out", "{tmp}/missing/cmp.png"], 2,
        "'{tmp}/missing' is not a directory that exists", absent=("{tmp}/missing",)),
    Row("plot", "--out is a directory", ["plot", "{run}", "{run}", "--out", "{inputs}"], 2, "{inputs}"),
    Row("plot", "disk full", ["plot", "{run}"], 1, "No space left on device", disk(errno.ENOSPC)),
    Row("export", "--out in a missing directory", ["export", "{run}", "--out", "{tmp}/missing/m.onnx"], 2,
        "'{tmp}/missing' is not a directory that exists", absent=("{tmp}/missing",)),
    Row("init-scan", "--out in a missing directory", ["init-scan", "--dataset", "{tiny}", "--out",
                                                      "{tmp}/missing/s.png"], 2, "is not a directory that exists"),
    Row("export", "read-only file system", ["export", "{run}"], 1, "cannot write {run}/model.onnx: Permission denied",
        disk(errno.EACCES), absent=("{run}/model.onnx",)),
    Row("export", "--out is a directory", ["export", "{run}", "--out", "{inputs}"], 2, "{inputs}"),
    Row("lr-find", "--out below a file", ["lr-find", "--dataset", "{tiny}", "--val-size", "30", "--out",
                                          "{inputs}/digit.png/lr"], 1, "cannot create lr-find directory"),
    Row("lr-find", "disk full at the end", ["lr-find", "--dataset", "{tiny}", "--val-size", "30", "--steps", "20",
                                            "--out", NEW_OUT], 1, "cannot write {tmp}/new/lr-find.json",
        disk(errno.ENOSPC), absent=(NEW_OUT,)),
    Row("lr-find", "SIGTERM between its two files", ["lr-find", "--dataset", "{tiny}", "--val-size", "30", "--steps",
                                                    "20", "--out", NEW_OUT], 143, "interrupted by SIGTERM",
        raises("mlptrain.plots.tune:plot_lr_find", Terminated()), absent=(NEW_OUT,)),
    Row("init-scan", "disk full", ["init-scan", "--dataset", "{tiny}", "--val-size", "30", "--r-min", "0.1", "--out",
                                   "{tmp}/scan.png"], 1, "cannot write or read {tmp}/scan.png: No space left on device",
        disk(errno.ENOSPC), absent=("{tmp}/scan.png",)),
    Row("sweep", "disk full", ["sweep", "{spec}", "--out", NEW_OUT, "--quiet"], 1, "cannot write {tmp}/new/spec.yaml",
        disk(errno.ENOSPC), absent=(NEW_OUT,)),
    Row("init-scan", "--out is a directory", ["init-scan", "--dataset", "{tiny}", "--val-size", "30", "--r-min", "0.1",
                                              "--out", "{inputs}"], 2, "{inputs}"),
    Row("predict", "--save-preprocessed on a full disk", ["predict", "{run}", "{inputs}/digit.png",
                                                          "--save-preprocessed", "{tmp}/seen/here"], 1,
        "cannot write to --save-preprocessed {tmp}/seen/here", disk(errno.ENOSPC), absent=("{tmp}/seen",)),
    Row("fit", "disk full at the first file", ["fit", "--dataset", "{tiny}", *FIT, "--epochs", "1", "--out",
                                               "{tmp}/deep/new"], 1, "cannot write {tmp}/deep/new/config.yaml",
        disk(errno.ENOSPC), absent=("{tmp}/deep",)),
    Row("eval", "eval.json cannot be written: the numbers stand", ["eval", "{run}"], 0,
        "could not write {run}/eval.json", disk(errno.EACCES)),
    Row("sweep", "--out below a file", ["sweep", "{spec}", "--out", "{inputs}/digit.png/sweep", "--quiet"], 1,
        "cannot create sweep directory"),
    Row("data download", "read-only cache", ["data", "download", "--dataset", "{name}", "--data-dir",
                                             "{tmp}/ro/cache"], 1, "Permission denied", disk(errno.EACCES),
        absent=("{tmp}/ro",)),
    # --- 3. changes to a run: checked first, so a failure changes nothing ---
    Row("fit", "extension with state.npz cut short", ["fit", "--resume", "{run}", "--epochs", "3", "--quiet"], 1,
        "{run}/state.npz is unreadable or not an .npz file", cut("{run}/state.npz", 3000)),
    Row("fit", "extension with a hand-edited lr", ["fit", "--resume", "{run}", "--epochs", "3", "--quiet"], 1,
        "{run}/config.yaml was changed after the run was trained: lr", edit("{run}/config.yaml", "lr: 0.1", "lr: 0.2")),
    Row("fit", "resume with config.yaml cut short", ["fit", "--resume", "{partial}", "--quiet"], 1,
        "{partial}/config.yaml is damaged", cut("{partial}/config.yaml", 60)),
    Row("fit", "resume with a key dropped from config.yaml", ["fit", "--resume", "{partial}", "--quiet"], 1,
        "{partial}/config.yaml was changed after the run was trained: val_size (trained with 30, config.yaml has "
        "5000)", edit("{partial}/config.yaml", "val_size: 30\n", "")),
    Row("fit", "resume with checkpoint.npz cut short", ["fit", "--resume", "{partial}", "--quiet"], 1,
        "{partial}/checkpoint.npz is unreadable", cut("{partial}/checkpoint.npz", 500)),
    Row("export", "--out the run's own weights", ["export", "{run}", "--out", "{run}/weights.npz"], 2,
        "{run}/weights.npz is one of the files of the run directory"),
    Row("plot", "--out the run's own summary", ["plot", "{run}", "--out", "{run}/summary.json"], 2,
        "{run}/summary.json is one of the files of the run directory"),
    # --- 6. files the tool wrote, damaged later ---
    Row("plot", "augmented.npz of random bytes", ["plot", "{run}"], 1, "{run}/augmented.npz is unreadable",
        write("{run}/augmented.npz", bytes(range(256)))),
    Row("plot", "augmented.npz of floats", ["plot", "{run}"], 1, "{run}/augmented.npz is damaged",
        replace_npz("{run}/augmented.npz", "images", np.full((6, 8, 64), 0.5))),
    Row("inspect", "diagnostics.json of the wrong shape", ["inspect", "{partial}"], 1,
        "{partial}/diagnostics.json is damaged: 'warnings'",
        write("{partial}/diagnostics.json", '{{"n_classes": 3, "init_health": [], "warnings": 5}}')),
    Row("inspect", "metrics.jsonl line without its epoch", ["inspect", "{run}"], 1,
        "{run}/metrics.jsonl is damaged: '[1].epoch'", edit("{run}/metrics.jsonl", '{{"epoch": 2, ', "{{")),
    Row("inspect", "summary.json warning without its code", ["inspect", "{run}"], 1, "{run}/summary.json is damaged",
        edit("{run}/summary.json", '"warnings": [', '"warnings": [{{"epoch": 1}}, ')),
    Row("inspect", "eval.json with a ragged confusion matrix", ["inspect", "{run}"], 1,
        "{run}/eval.json is damaged: its confusion matrix",
        edit("{run}/eval.json", '"confusion": [', '"confusion": [[1], ')),
    Row("eval", "weights.npz cut short", ["eval", "{run}"], 1, "{run}/weights.npz is unreadable",
        cut("{run}/weights.npz", 1000)),
    Row("plot", "sweep results.jsonl row without test_acc", ["plot", "{sweep}"], 1, "{sweep}/results.jsonl is damaged",
        edit("{sweep}/results.jsonl", '"test_acc"', '"other"')),
    Row("plot", "sweep.json not JSON", ["plot", "{sweep}"], 1, "{sweep}/sweep.json is unreadable or not JSON",
        cut("{sweep}/sweep.json", 40)),
    Row("sweep", "sweep.json of the wrong shape", ["sweep", "{spec}", "--out", "{sweep}", "--quiet"], 1,
        "{sweep}/sweep.json is damaged", write("{sweep}/sweep.json", "[1, 2]")),
    Row("sweep", "a trial's summary.json damaged", ["sweep", "{spec}", "--out", "{sweep}", "--quiet", "--workers", "1"],
        1, "summary.json is damaged", edit("{sweep}/lr=0.1,seed=0/summary.json", '"status"', '"state"'),
        changes=("sweep",)),
    Row("lr-find", "--out holding a damaged lr-find.json", ["lr-find", "--dataset", "{tiny}", "--out", "{tmp}/lr"], 2,
        "already exists and is not an empty directory", write("{tmp}/lr/lr-find.json", "{{not json")),
    Row("data verify", "a cached file damaged", ["data", "verify", "--data-dir", "{cache}"], 1,
        "1 file(s) missing or corrupt", write("{cache}/{name}/t10k-labels-idx1-ubyte.gz", b"garbage"),
        changes=("cache",)),
]


def _row_id(row: Row) -> str:
    return f"{row.command}: {row.fault}"


def test_every_command_has_a_row() -> None:
    covered = {row.command for row in ROWS}
    commands = {" ".join(path) for path, _ in leaf_commands()}
    assert commands - covered == set(), "commands without a row in the fault table"
    assert covered <= commands, covered - commands


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_fault(row: Row, base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLPTRAIN_MIRROR", "MLPTRAIN_DATA_DIR", "MLPTRAIN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    world = World(tmp_path, base, monkeypatch)
    if row.setup is not None:
        row.setup(world)
    before = world.hashes()
    result = CliRunner().invoke(cli, [world.fill(arg) for arg in row.args])
    assert result.exit_code == row.exit, result.output
    if row.exit == 0:
        assert world.fill(row.pattern) in result.stderr and "Traceback" not in result.output, result.output
    else:
        one_error(result, world.fill(row.pattern))
    after = world.hashes()
    for name in KEPT:
        if name not in row.changes:
            assert after[name] == before[name], f"{name} changed"
    for path in row.absent:
        assert not Path(world.fill(path)).exists(), world.fill(path)
    assert temporaries(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_standard_output_on_a_full_disk(base: Base) -> None:
    """The output itself cannot be written: one line on stderr, exit 1, no traceback."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "mlptrain", "eval", str(base.root / "run"), "--quiet"],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == ["Error: cannot write the output: No space left on device; check free space, "
                                        "permissions and that the directory exists"], done.stderr


def test_a_reader_that_goes_away_is_no_error(base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlptrain predict RUN many.npy --json | head -1`: the pipe closes early (EPIPE); Click ends quietly with
    status 1, as a pipeline expects, not with an error about its output."""
    from mlptrain.cli import predict

    def closed(*args: object) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    monkeypatch.setattr(predict._Printer, "add", closed)
    result = CliRunner().invoke(cli, ["predict", str(base.root / "run"), str(base.root / "inputs" / "three.npy"),
                                      "--json"])
    assert result.exit_code == 1 and "Error" not in result.stderr, result.output
