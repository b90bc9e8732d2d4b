"""The run directory: ``config.yaml``, ``metrics.jsonl``, ``diagnostics.json``, ``weights.npz``, ``summary.json``,
``eval.json``.

Every file is written to a temporary name in the same directory and moved
into place with ``os.replace``, so a crash never leaves a truncated file that
looks complete. ``summary.json`` is written last: a run directory without it
did not finish. ``weights.npz`` holds only plain arrays (no pickles), with the
architecture stored beside the weights so ``eval`` needs nothing else. While
a process writes the run it holds ``.lock`` (``runs.lock``); readers ignore it.
"""

from __future__ import annotations

import itertools
import json
import time
import zipfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from mlptrain.config import build_config
from mlptrain.errors import ConfigError, RunDirError, RunDirInUse
from mlptrain.fsutil import atomic_write
from mlptrain.nn.activations import get_activation
from mlptrain.nn.network import Network
from mlptrain.nn.norms import NormLayers, get_norm
from mlptrain.runs.lock import DirLock, claim_new_dir

WEIGHTS_FORMAT = 1
NORM_FORMAT = 2  # a net with a norm: format 1's arrays plus the norm's; a reader of format 1 alone refuses it
NORM_ARRAYS = ("scale", "shift", "running_mean", "running_var")  # per hidden layer l: scale<l>, …
CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE = "config.yaml", "metrics.jsonl", "weights.npz"
SUMMARY_FILE, EVAL_FILE, CHECKPOINT_FILE = "summary.json", "eval.json", "checkpoint.npz"
DIAGNOSTICS_FILE = "diagnostics.json"  # the init check and the warnings so far, kept current while the run trains
AUGMENTED_FILE = "augmented.npz"  # a few training images and their distortions, for plot's augment.png
STATE_FILE = "state.npz"  # a finished run's last training state, for fit --resume RUN --epochs N (runs/extend.py)
SWEEP_FILE, RESULTS_JSONL = "sweep.json", "results.jsonl"  # a sweep directory's (sweep.results); runs lists its trials
CHECKPOINT_CONFIG = "config_json"  # the checkpoint's record of the config it was trained with (JSON)
# Every file fit writes into a run: no command may write over one (``check_not_a_run_file``).
RUN_FILES = (CONFIG_FILE, METRICS_FILE, DIAGNOSTICS_FILE, WEIGHTS_FILE, SUMMARY_FILE, EVAL_FILE, CHECKPOINT_FILE,
             STATE_FILE, AUGMENTED_FILE)
NEW_RUN_HINT = "wait for it to finish, or choose another --out"
RESUME_HINT = "wait for it to finish; only one process at a time may write a run"


def _write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    try:
        atomic_write(path, write)
    except OSError as exc:
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}; check free space and permissions") from None


def write_text(path: Path, text: str) -> None:
    _write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_metrics(run_dir: Path, history: list[dict[str, float]]) -> None:
    """Rewrite ``metrics.jsonl`` whole: one line per epoch, never a half line."""
    write_text(run_dir / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in history))


def write_diagnostics(run_dir: Path, n_classes: int, init_health: list[dict[str, Any]],
                      warnings: list[dict[str, Any]], inputs: dict[str, float] | None = None) -> None:
    """What the diagnostics found so far, for ``inspect`` and ``plot`` of a run that has not finished: the
    init check's rows, the warnings (with their causes) and the data check's statistics."""
    write_json(run_dir / DIAGNOSTICS_FILE, {"n_classes": n_classes, "init_health": init_health, "warnings": warnings,
                                            "inputs": inputs or {}})


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    write_text(run_dir / CONFIG_FILE, config_text(config))


def config_text(config: dict[str, Any]) -> str:
    """``config.yaml``'s text: the keys in the table's order."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def create_run_dir(out: Path | None, activation: str, init: str, root: Path = Path("runs"),
                   command: str | None = None) -> DirLock:
    """Claim the run directory, held until the lock is released: ``out`` if given (it must be new or
    empty), else a fresh ``root/<timestamp>-<activation>-<init>``."""
    if out is not None:
        return claim_new_dir(out, "run directory", "an empty directory", NEW_RUN_HINT, command)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{activation}-{init}"
    for suffix in itertools.count(1):
        candidate = root / (stem if suffix == 1 else f"{stem}-{suffix}")
        if candidate.exists():
            continue
        try:
            return claim_new_dir(candidate, "run directory", "an empty directory", NEW_RUN_HINT, command)
        except (ConfigError, RunDirInUse):
            continue  # another fit started in the same second took this name: take the next
    raise AssertionError("unreachable")


def save_weights(path: Path, net: Network, meta: dict[str, Any]) -> None:
    """Write weights, biases and architecture to ``path`` (atomically, no pickles).

    ``meta`` holds plain strings and numbers (dataset name, image shape…).
    """
    arrays: dict[str, np.ndarray] = {
        "format": np.array(WEIGHTS_FORMAT if net.norm is None else NORM_FORMAT),
        "activation": np.array(net.activation.name),
        "n_layers": np.array(len(net.weights)),
    }
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    if net.norm is not None:
        arrays |= _norm_arrays(net.norm)
    for key, value in meta.items():
        arrays[f"meta_{key}"] = np.array(value)
    _write(path, lambda f: np.savez(f, **arrays))


def load_weights(path: Path) -> tuple[Network, dict[str, Any]]:
    """Rebuild the network saved by ``save_weights``; RunDirError on any defect."""
    arrays = _read_npz(path)
    try:
        if int(arrays["format"]) not in (WEIGHTS_FORMAT, NORM_FORMAT):
            raise RunDirError(f"{path}: weights format {int(arrays['format'])} is not supported")
        activation = get_activation(str(arrays["activation"]))
        n_layers = int(arrays["n_layers"])
        weights = [arrays[f"W{i}"] for i in range(n_layers)]
        biases = [arrays[f"b{i}"] for i in range(n_layers)]
        norm = _read_norm(arrays, n_layers - 1) if int(arrays["format"]) == NORM_FORMAT else None
    except KeyError as exc:
        raise RunDirError(f"{path} is not an mlptrain weights file: array {exc} is missing") from None
    except (ValueError, TypeError, ConfigError) as exc:
        raise RunDirError(f"{path} is not an mlptrain weights file: {exc}") from None
    _check_shapes(path, weights, biases)
    check_finite(path, arrays, "re-run fit")
    if norm is not None:
        _check_norm_shapes(path, norm, weights)
    meta = {key[5:]: arrays[key].tolist() for key in arrays if key.startswith("meta_")}
    return Network(weights, biases, activation, norm), meta


def _norm_arrays(norm: NormLayers) -> dict[str, np.ndarray]:
    """``norm``, ``norm_eps`` and per hidden layer ``scale<l>``, ``shift<l>`` (and ``running_mean<l>``,
    ``running_var<l>`` for batch norm)."""
    arrays = {"norm": np.array(norm.kind.name), "norm_eps": np.array(norm.eps)}
    lists = (norm.scales, norm.shifts, norm.running_mean, norm.running_var)
    for name, values in zip(NORM_ARRAYS, lists):
        arrays.update({f"{name}{i}": v for i, v in enumerate(values)})
    return arrays


def _read_norm(arrays: dict[str, np.ndarray], n_hidden: int) -> NormLayers:
    """The norm ``_norm_arrays`` wrote (KeyError, ValueError or ConfigError when it is incomplete)."""
    kind = get_norm(str(arrays["norm"]))
    names = NORM_ARRAYS if kind.running else NORM_ARRAYS[:2]
    lists = [[arrays[f"{name}{i}"] for i in range(n_hidden)] for name in names]
    lists += [[], []] if not kind.running else []
    return NormLayers(kind, *lists, eps=float(arrays["norm_eps"]))


def _check_norm_shapes(path: Path, norm: NormLayers, weights: list[np.ndarray]) -> None:
    for i, w in enumerate(weights[:-1]):
        for name, values in zip(NORM_ARRAYS, (norm.scales, norm.shifts, norm.running_mean, norm.running_var)):
            if values and (values[i].shape != (w.shape[1],) or values[i].dtype != w.dtype):
                raise RunDirError(
                    f"{path}: {name}{i} has shape {values[i].shape} {values[i].dtype}, not ({w.shape[1]},) "
                    f"{w.dtype} like layer {i}'s outputs; the file is damaged or not from mlptrain"
                )


def class_names(meta: dict[str, Any], n_classes: int) -> tuple[str, ...]:
    """The class names stored with the weights; for runs saved before they were stored, the data-set
    table's names, else the class numbers."""
    from mlptrain.data.datasets import DATASETS

    stored = meta.get("class_names")
    if isinstance(stored, list) and len(stored) == n_classes:
        return tuple(str(name) for name in stored)
    spec = DATASETS.get(str(meta.get("dataset")))
    if spec is not None and len(spec.class_names) == n_classes:
        return spec.class_names
    return tuple(str(k) for k in range(n_classes))


def save_checkpoint(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the trainer's state to ``checkpoint.npz``; the old one stays until the new one is whole."""
    _write(run_dir / CHECKPOINT_FILE, lambda f: np.savez(f, **arrays))


def config_record(config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The config a run trains with, as a checkpoint's array: ``--resume`` compares it with ``config.yaml``."""
    return {CHECKPOINT_CONFIG: np.array(json.dumps(config))}


def checkpoint_config(arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The config a checkpoint was written with (None: written before checkpoints recorded it)."""
    if CHECKPOINT_CONFIG not in arrays:
        return None
    try:
        config = json.loads(str(arrays[CHECKPOINT_CONFIG]))
    except ValueError:
        config = None
    return config if isinstance(config, dict) else {}  # {}: damaged, which a comparison then reports


def save_augmented(run_dir: Path, images: np.ndarray, shape: tuple[int, ...], augment: tuple[str, ...]) -> None:
    """Write ``augmented.npz``: ``images`` (draws + 1, n, pixels) in [0, 1] as uint8, row 0 undistorted."""
    pixels = np.round(images * 255).astype(np.uint8)
    _write(run_dir / AUGMENTED_FILE, lambda f: np.savez(f, images=pixels, shape=np.array(shape),
                                                         augment=np.array(list(augment))))


def load_augmented(run_dir: Path) -> tuple[np.ndarray, tuple[int, ...], list[str]] | None:
    """``augmented.npz``'s images (uint8), image shape and augmentation list; None without the file."""
    path = run_dir / AUGMENTED_FILE
    if not path.exists():
        return None
    arrays = _read_npz(path)
    remedy = "delete it (it is only plot's preview) and plot again"
    try:
        images, augment = arrays["images"], [str(a) for a in arrays["augment"].reshape(-1)]
        shape = tuple(int(d) for d in arrays["shape"].reshape(-1))
    except KeyError as exc:
        raise RunDirError(f"{path} is not an mlptrain augmentation preview: array {exc} is missing; {remedy}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise RunDirError(f"{path} is damaged ({exc}); {remedy}") from None
    if not (images.dtype == np.uint8 and images.ndim == 3 and len(shape) == 2 and min(shape, default=0) > 0
            and images.shape[2] == shape[0] * shape[1] and images.size):
        raise RunDirError(f"{path} is damaged: images {images.shape} {images.dtype} do not fit the image shape "
                          f"{shape}; {remedy}")
    return images, shape, augment


def load_checkpoint(run_dir: Path) -> dict[str, np.ndarray] | None:
    """The saved trainer state, or None when the run stopped before its first checkpoint."""
    path = run_dir / CHECKPOINT_FILE
    return load_state(path) if path.exists() else None


def load_state(path: Path, remedy: str = "start a new run") -> dict[str, np.ndarray]:
    """A trainer state (``checkpoint.npz`` or ``state.npz``), its numbers checked finite; RunDirError saying
    ``remedy`` otherwise."""
    arrays = _read_npz(path, remedy)
    check_finite(path, arrays, remedy)
    return arrays


def check_finite(path: Path, arrays: dict[str, np.ndarray], remedy: str) -> None:
    """RunDirError naming the first float array of ``path`` that holds NaN or an infinity.

    Training never saves one (a run whose numbers stop being finite is stopped as diverged, its last good
    epoch kept), so such a file was damaged or written by something else.
    """
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise RunDirError(f"{path}: {name} holds NaN or infinite values, which training never saves: the file is "
                              f"damaged; {remedy}")


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete the temporary files a killed writer left (``.<file>.<random>.tmp``); only for a run
    being resumed, which has no other writer."""
    for name in RUN_FILES:
        for stale in run_dir.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def check_not_a_run_file(path: Path) -> None:
    """ConfigError when ``path`` is one of a run directory's own files: ``export RUN --out RUN/weights.npz``
    would replace the weights it exports with the ONNX model."""
    if path.name in RUN_FILES and (path.parent / CONFIG_FILE).is_file():
        raise ConfigError(f"{path} is one of the files of the run directory {path.parent}; writing it "
                          "would damage the run: choose another name")


def read_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config a run was started with."""
    import yaml

    path = run_dir / CONFIG_FILE
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} does not exist; is {run_dir} a run directory?") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirError(f"{path} is unreadable or not YAML: {exc}") from None
    if not isinstance(values, dict):
        raise RunDirError(f"{path} is not a config mapping; the run directory is damaged")
    try:
        build_config(values, {key: str(path) for key in values})
    except ConfigError as exc:
        raise RunDirError(f"{exc}; {path} is damaged: put the value back, or start a new run") from None
    return values


def read_checkpoint_config(path: Path) -> dict[str, Any] | None:
    """The config a checkpoint records, read alone (not its arrays); None when it records none or is unreadable
    (reading it whole says what is wrong)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return checkpoint_config({CHECKPOINT_CONFIG: npz[CHECKPOINT_CONFIG]}) if CHECKPOINT_CONFIG in npz else None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return None


def _read_npz(path: Path, remedy: str = "re-run fit") -> dict[str, np.ndarray]:
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; is this a finished run directory?")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RunDirError(f"{path} is unreadable or not an .npz file ({exc}); {remedy}") from None


def _check_shapes(path: Path, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
    if not weights:
        raise RunDirError(f"{path} holds no layers")
    previous = weights[0].shape[0] if weights[0].ndim == 2 else None
    for i, (w, b) in enumerate(zip(weights, biases)):
        ok = (
            w.ndim == 2 and b.ndim == 1 and w.shape[0] == previous and b.shape[0] == w.shape[1]
            and w.dtype in (np.float32, np.float64) and b.dtype == w.dtype
        )
        if not ok:
            raise RunDirError(
                f"{path}: layer {i} has weights {w.shape} {w.dtype} and biases {b.shape} {b.dtype}, "
                "which do not fit together; the file is damaged or not from mlptrain"
            )
        previous = w.shape[1]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} does not exist; is this a finished run directory?") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable or not JSON: {exc}") from None
