"""TensorBoard event files in a run directory, written with tensorboardX (the ``mlptrain[tensorboard]`` extra).

Per epoch (step = epoch): ``loss/train``, ``loss/val``, ``accuracy/train``,
``accuracy/val``, ``lr``, and per layer ``layers/<layer>/signal``, ``gain``,
``dead`` and ``update_ratio``; per logging interval (step = optimizer step)
``loss/train_batches``, the mean training loss over that interval; once, the
resolved config as text. When the run ends, ``test/accuracy`` and
``test/loss``, and the HParams session: the config keys as hyperparameters,
the ``hparams/*`` scalars as its metrics, so TensorBoard's HParams view pointed
at a sweep directory compares its trials. Event files are append-only: a
resumed run adds a file. ``write_run_events`` writes the same (but the
per-interval losses, which no file keeps) for a run made without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mlptrain.errors import MissingDependency

INSTALL = "pip install 'mlptrain[tensorboard]'"
LAYER_SCALARS = ("signal", "gain", "dead", "update_ratio")
INTERVALS_PER_EPOCH = 20  # training-loss points per epoch: fine enough to see a spike, few enough to stay small
HPARAM_METRICS = {  # the HParams view's metric -> (summary section, key)
    "hparams/best_val_acc": ("best", "val_acc"), "hparams/test_acc": ("test", "accuracy"),
    "hparams/test_loss": ("test", "loss"), "hparams/final_train_loss": ("final", "train_loss"),
}


def require_tensorboard() -> None:
    """MissingDependency (saying how to install it) unless tensorboardX can be imported."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise MissingDependency(f"tensorboard: true needs the tensorboardX package: {INSTALL}") from None


class EventWriter:
    """One run directory's TensorBoard events; a context manager (closing flushes everything)."""

    def __init__(self, run_dir: Path) -> None:
        require_tensorboard()
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(run_dir), flush_secs=30)
        self._losses: list[float] = []

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()

    def config(self, config: dict[str, Any]) -> None:
        """The resolved config as a text summary (a YAML block, as in config.yaml)."""
        import yaml

        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)

    def batch_loss(self, step: int, loss: float, done: int, total: int) -> None:
        """Collect one batch's training loss; write the interval's mean every ``total / INTERVALS_PER_EPOCH``."""
        self._losses.append(loss)
        interval = max(1, total // INTERVALS_PER_EPOCH)
        if len(self._losses) >= interval or done == total:
            self.writer.add_scalar("loss/train_batches", sum(self._losses) / len(self._losses), step)
            self._losses = []

    def epoch(self, metrics: dict[str, Any]) -> None:
        """One epoch's scalars (a metrics.jsonl line), flushed so a running TensorBoard sees them."""
        step = metrics["epoch"]
        for part in ("train", "val"):
            for key, tag in (("loss", "loss"), ("acc", "accuracy")):
                if f"{part}_{key}" in metrics:
                    self.writer.add_scalar(f"{tag}/{part}", metrics[f"{part}_{key}"], step)
        self.writer.add_scalar("lr", metrics["lr"], step)
        for row in metrics.get("layers", []):
            for key in LAYER_SCALARS:
                if isinstance(row.get(key), (int, float)):
                    self.writer.add_scalar(f"layers/{row['layer']}/{key}", row[key], step)
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        """The test results and the HParams session of a finished (or diverged) run."""
        from tensorboardX.summary import hparams

        step = summary.get("epochs_run") or 0
        for key, value in (summary.get("test") or {}).items():
            self.writer.add_scalar(f"test/{key}", value, step)
        metrics = {}
        for tag, (section, key) in HPARAM_METRICS.items():
            value = (summary.get(section) or {}).get(key)
            if isinstance(value, (int, float)):
                metrics[tag] = value
                self.writer.add_scalar(tag, value, step)
        _, start, end = hparams(hparam_values(summary["config"]), metrics)  # no experiment: TensorBoard
        file_writer = self.writer._get_file_writer()  # infers it from the runs' sessions, a sweep's trials too
        file_writer.add_summary(start)
        file_writer.add_summary(end)
        self.writer.flush()


def hparam_values(config: dict[str, Any]) -> dict[str, Any]:
    """The config as HParams values: numbers, strings and booleans (lists joined, unset as ``none``)."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        if key == "tensorboard":
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value)) or "none"
        values[key] = "none" if value is None else value
    return values


class TensorBoardReporter:
    """A ``run_fit`` reporter that also writes the events, then passes everything on to ``inner``."""

    def __init__(self, inner: Any, events: EventWriter, last_batch: Callable[[], tuple[float, int]]) -> None:
        self.inner, self.events, self.last_batch = inner, events, last_batch  # -> (its loss, the optimizer step)

    def init_health(self, rows: list) -> None:
        self.inner.init_health(rows)

    def warning(self, warning: dict[str, Any]) -> None:
        self.inner.warning(warning)

    def batch(self, done: int, total: int) -> None:
        loss, step = self.last_batch()
        self.events.batch_loss(step, loss, done, total)
        self.inner.batch(done, total)

    def epoch(self, metrics: dict[str, Any], epochs: int) -> None:
        self.events.epoch(metrics)
        self.inner.epoch(metrics, epochs)

    def done(self, summary: dict[str, Any]) -> None:
        self.events.finish(summary)
        self.inner.done(summary)


def write_run_events(run_dir: Path, config: dict[str, Any], history: list[dict[str, Any]],
                     summary: dict[str, Any] | None) -> Path:
    """Events for a run made without them, from its files: the config, every epoch, the end; returns the file."""
    before = set(run_dir.glob("events.out.tfevents.*"))
    with EventWriter(run_dir) as events:
        events.config(config)
        for metrics in history:
            events.epoch(metrics)
        if summary is not None:
            events.finish(summary)
    written = sorted(set(run_dir.glob("events.out.tfevents.*")) - before)
    return written[-1] if written else run_dir


def has_events(run_dir: Path) -> bool:
    return any(run_dir.glob("events.out.tfevents.*"))
