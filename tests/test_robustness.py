"""Robustness through the CLI: faulty mirrors, concurrent and offline caches, unwritable data
directories, hostile config files, damaged run directories, and a ``kill -9`` in the middle of ``fit``.

Each test checks the promise of the exit statuses in docs/index.md and README.md: the right status, one
``Error: …`` line that names the culprit, no traceback, and nothing half-written left behind.
Each case here once found a gap (null hidden, duplicate keys, ``1e-3`` in YAML, absurd widths,
wrong-shaped run files, mistyped checkpoint state, temp files left by kill -9); all are fixed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result

from mlptrain import experiment, fsutil
from mlptrain.cli import cli
from mlptrain.config import FIELDS
from mlptrain.data import datasets, download
from mlptrain.data.datasets import FILE_NAMES, DatasetSpec, RemoteFile

from faultkit import one_error
from httpserver import LoopbackServer, ok, status
from synthetic import write_dataset

TESTS = Path(__file__).resolve().parent
NAME = "robust"  # the fake data set put into DATASETS
FIT_TINY = ["--hidden", "8", "--epochs", "3", "--val-size", "30", "--batch-size", "32", "--lr", "0.1",
            "--init", "he-normal", "--threads", "1", "--quiet"]
# A run directory's own temporary files (fsutil.atomic_write): ".<name>.<random>.tmp".
TEMP_FILE = re.compile(
    r"^\.(checkpoint\.npz|metrics\.jsonl|config\.yaml|weights\.npz|summary\.json|diagnostics\.json)\..+\.tmp$")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's MLPTRAIN_* variables must not steer these tests."""
    for name in ("MLPTRAIN_MIRROR", "MLPTRAIN_DATA_DIR", "MLPTRAIN_THREADS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fake:
    """A synthetic data set that can be served as a known one: its files and their checksums."""

    source: Path  # a directory holding the four .gz files (usable as a mirror)
    payloads: dict[str, bytes]

    @property
    def mirror(self) -> str:
        """``source`` as a spec mirror: a base URL ending in ``/``."""
        return self.source.as_uri() + "/"

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        return tuple(RemoteFile(n, len(b), hashlib.sha256(b).hexdigest(), None) for n, b in self.payloads.items())

    def spec(self, *mirrors: str) -> DatasetSpec:
        return DatasetSpec(NAME, "robustness test data", self.files, tuple(mirrors), ("a", "b", "c"))

    def install(self, monkeypatch: pytest.MonkeyPatch, *mirrors: str) -> DatasetSpec:
        spec = self.spec(*mirrors)
        monkeypatch.setitem(datasets.DATASETS, NAME, spec)
        return spec


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    source = write_dataset(tmp_path / "source", n_train=120, n_test=40)
    return Fake(source, {name: (source / name).read_bytes() for name in FILE_NAMES})


def data_download(runner: CliRunner, data_dir: Path, *extra: str) -> Result:
    return runner.invoke(cli, ["data", "download", "--dataset", NAME, "--data-dir", str(data_dir), *extra])


def assert_cached(fake: Fake, data_dir: Path) -> None:
    """Exactly the four files, byte for byte, and no temporary file beside them."""
    cached = data_dir / NAME
    assert sorted(p.name for p in cached.iterdir() if ".decoded." not in p.name) == sorted(FILE_NAMES)
    for name, body in fake.payloads.items():
        assert (cached / name).read_bytes() == body


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if not p.is_dir()]


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def closed_port_mirror() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mirror/"


# --- 1. download faults through `mlptrain data download` -----------------------------------


def test_http_403_on_the_first_mirror_falls_over_to_the_second(
    runner: CliRunner, fake: Fake, http_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in FILE_NAMES:
        http_server.set(f"forbidden/{name}", status(403))
    good = http_server.serve_files("good", fake.payloads)
    fake.install(monkeypatch, http_server.url("forbidden/"), good)
    result = data_download(runner, tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{NAME}: verified in {tmp_path / 'cache' / NAME}\n"
    assert_cached(fake, tmp_path / "cache")
    assert http_server.hits(f"forbidden/{FILE_NAMES[0]}") == 1  # a 403 will not change: no retry
    assert [http_server.hits(f"forbidden/{n}") for n in FILE_NAMES[1:]] == [0, 0, 0]  # good mirror goes first
    assert [http_server.hits(f"good/{n}") for n in FILE_NAMES] == [1, 1, 1, 1]


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"


def test_html_page_served_with_200_falls_over_to_the_next_mirror(
    runner: CliRunner, fake: Fake, http_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in FILE_NAMES:
        http_server.set(f"portal/{name}", ok(HTML_PAGE))
    good = http_server.serve_files("good", fake.payloads)
    fake.install(monkeypatch, http_server.url("portal/"), good)
    result = data_download(runner, tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert_cached(fake, tmp_path / "cache")  # the page was never moved into place
    assert http_server.hits(f"portal/{FILE_NAMES[0]}") == 1  # a wrong body is not retried


@pytest.mark.parametrize("padded", [False, True], ids=["page", "page-padded-to-the-right-size"])
def test_html_page_on_the_only_mirror_is_one_error_and_leaves_nothing(
    runner: CliRunner, fake: Fake, http_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    padded: bool,
) -> None:
    first = FILE_NAMES[0]
    size = len(fake.payloads[first])
    page = HTML_PAGE.ljust(size) if padded else HTML_PAGE
    http_server.set(f"portal/{first}", ok(page))
    fake.install(monkeypatch, http_server.url("portal/"))
    data_dir = tmp_path / "cache"
    result = data_download(runner, data_dir)
    assert result.exit_code == 1
    reason = "checksum mismatch" if padded else f"wrong size: {len(page)} bytes, expected {size}"
    one_error(result, f"could not download {first}", f"{http_server.url('portal/')}{first} ({reason})")
    assert result.stdout == ""
    assert files_under(data_dir) == []  # neither the page nor a .part temporary file


# --- 2. two processes downloading into one cache at once -----------------------------------

CHILD = r"""
import json, sys, time
from pathlib import Path
from contextlib import contextmanager

from mlptrain.data import datasets

from mlptrain.data import download
from mlptrain.data.datasets import DatasetSpec, RemoteFile

spec_json, cache, ready, go = sys.argv[1:5]
d = json.loads(spec_json)
spec = DatasetSpec(d["name"], "two processes", tuple(RemoteFile(**f) for f in d["files"]),
                   tuple(d["mirrors"]), ("a", "b", "c"))
datasets.DATASETS[spec.name] = spec
fetched = []
real_fetch = download._fetch_verified

def counting_fetch(remote, url, dest_dir, transport):
    fetched.append(remote.name)
    return real_fetch(remote, url, dest_dir, transport)

download._fetch_verified = counting_fetch

@contextmanager
def slow(desc, total):  # stretch each copy so the two processes overlap file by file
    def advance(n):
        time.sleep(0.02)
    yield advance

Path(ready).touch()
deadline = time.time() + 20
while not Path(go).exists() and time.time() < deadline:
    time.sleep(0.001)
download.ensure_dataset(datasets.DATASETS[spec.name], Path(cache), progress=slow)
print(json.dumps(fetched))
"""


def test_two_processes_download_into_one_cache_at_once(tmp_path: Path) -> None:
    source = write_dataset(tmp_path / "source", n_train=2000, n_test=300, shape=(16, 16))
    payloads = {name: (source / name).read_bytes() for name in FILE_NAMES}
    spec = {
        "name": NAME,
        "files": [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest(), "md5": None}
                  for n, b in payloads.items()],
        "mirrors": [source.as_uri() + "/"],
    }
    cache, go = tmp_path / "cache", tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec), str(cache), str(tmp_path / f"ready{i}"),
                          str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i in range(2)
    ]
    try:
        deadline = time.time() + 30
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert time.time() < deadline and all(c.poll() is None for c in children), "a child did not start"
            time.sleep(0.005)
        go.touch()  # both start together
        # A third party reading the cache meanwhile sees each file whole or not at all.
        seen: set[str] = set()
        while any(c.poll() is None for c in children) and time.time() < deadline:
            for name, body in payloads.items():
                try:
                    data = (cache / NAME / name).read_bytes()
                except FileNotFoundError:
                    continue
                assert data == body, f"a reader saw a partial {name} ({len(data)} of {len(body)} bytes)"
                seen.add(name)
            time.sleep(0.002)
        outputs = [c.communicate(timeout=60) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [c.returncode for c in children] == [0, 0], [err for _, err in outputs]
    fetched = [json.loads(out) for out, _ in outputs]
    assert all(FILE_NAMES[0] in f for f in fetched), fetched  # both really downloaded, side by side
    assert seen, "the reader never saw a file while the downloads ran"
    cached = cache / NAME
    # no .part file left over
    assert sorted(p.name for p in cached.iterdir() if ".decoded." not in p.name) == sorted(FILE_NAMES)
    for name, body in payloads.items():
        assert hashlib.sha256((cached / name).read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()


# --- 3. a corrupted cache and no working mirror -----------------------------------------------


def test_corrupted_cache_offline_is_reported_and_never_used(
    runner: CliRunner, fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "cache"
    fake.install(monkeypatch, fake.mirror)
    assert data_download(runner, data_dir).exit_code == 0
    victim = data_dir / NAME / FILE_NAMES[2]
    flip_byte(victim, len(fake.payloads[FILE_NAMES[2]]) // 2)
    damaged = victim.read_bytes()

    dead = closed_port_mirror()
    fake.install(monkeypatch, dead)  # offline: the only mirror refuses connections
    monkeypatch.setattr(download, "time", SimpleNamespace(sleep=lambda seconds: None))  # no backoff waits

    result = runner.invoke(cli, ["data", "verify", "--dataset", NAME, "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    states = {row.split()[1]: row.split()[2] for row in result.stdout.splitlines()}
    assert states == {**dict.fromkeys(FILE_NAMES, "ok"), FILE_NAMES[2]: "CORRUPT"}
    one_error(result, "1 file(s) missing or corrupt")

    out = tmp_path / "run"
    result = runner.invoke(cli, ["fit", "--dataset", NAME, "--data-dir", str(data_dir), *FIT_TINY, "--out", str(out)])
    assert result.exit_code == 1
    one_error(result, f"could not download {FILE_NAMES[2]}", f"{dead}{FILE_NAMES[2]} (connection refused",
              str(data_dir / NAME))
    result = runner.invoke(cli, ["fit", "--dataset", NAME, "--data-dir", str(data_dir), "--mirror",
                                 str(tmp_path / "unplugged-drive"), *FIT_TINY, "--out", str(out)])
    assert result.exit_code == 1
    one_error(result, f"could not download {FILE_NAMES[2]}", "(no such file)")
    assert not out.exists()  # refused before a run directory was made: nothing trained on bad data
    assert victim.read_bytes() == damaged  # left for `data download` to repair; never half-replaced
    assert sorted(p.name for p in (data_dir / NAME).iterdir() if ".decoded." not in p.name) == sorted(FILE_NAMES)


# --- 4. unwritable data directories -----------------------------------------------------------


def test_read_only_dataset_directory(runner: CliRunner, fake: Fake, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "cache"
    locked = data_dir / NAME
    locked.mkdir(parents=True)
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod 0o555 does not stop writes (see the simulated-EACCES test)")
        fake.install(monkeypatch, fake.mirror)
        result = data_download(runner, data_dir)
        assert result.exit_code == 1
        one_error(result, f"into {locked}", "Permission denied", "writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_unwritable_cache_is_one_error_line(runner: CliRunner, fake: Fake, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only cache does to the writer, simulated so it also runs as root."""

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    fake.install(monkeypatch, fake.mirror)
    monkeypatch.setattr(fsutil, "tempfile", SimpleNamespace(mkstemp=denied))
    data_dir = tmp_path / "cache"
    result = data_download(runner, data_dir)
    assert result.exit_code == 1
    one_error(result, f"cannot write {FILE_NAMES[0]} into {data_dir / NAME}", "Permission denied")
    assert files_under(data_dir) == []


@pytest.mark.parametrize("command", [["data", "download", "--dataset", NAME], ["data", "verify"], ["data", "list"],
                                     ["fit", "--dataset", NAME]], ids=" ".join)
def test_existing_file_as_data_dir_is_a_usage_error(runner: CliRunner, fake: Fake, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    fake.install(monkeypatch, fake.mirror)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache should be")
    result = runner.invoke(cli, [*command, "--data-dir", str(blocker)])
    assert result.exit_code == 2  # a bad flag value (README: usage error)
    one_error(result, "'--data-dir'", "is a file")
    assert blocker.read_text() == "a file where the cache should be"


@pytest.mark.parametrize("layout", ["file-as-parent", "file-as-dataset-dir"])
def test_data_dir_that_cannot_be_created(runner: CliRunner, fake: Fake, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    fake.install(monkeypatch, fake.mirror)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    if layout == "file-as-parent":
        data_dir, target = blocker / "sub", blocker / "sub" / NAME
    else:
        data_dir, target = tmp_path, tmp_path / NAME
        (tmp_path / NAME).write_text("a file where the data set directory should be")
    for command in (["data", "download", "--dataset", NAME],
                    ["fit", "--dataset", NAME, *FIT_TINY, "--out", str(tmp_path / "run")]):
        result = runner.invoke(cli, [*command, "--data-dir", str(data_dir)])
        assert result.exit_code == 1, result.output
        one_error(result, f"cannot create data directory {target}", "writable directory")
    assert not (tmp_path / "run").exists()


# --- 5. config files through `mlptrain fit --config` -----------------------------------------


def fit_with_config(runner: CliRunner, tmp_path: Path, config: Path, *extra: str) -> Result:
    """fit on an empty cache with a mirror that holds nothing: a config that got through
    validation would fail on the data instead (exit 1), never touch the network."""
    return runner.invoke(cli, ["fit", "--config", str(config), "--data-dir", str(tmp_path / "cache"),
                               "--mirror", str(tmp_path / "no-mirror"), "--out", str(tmp_path / "run"),
                               "--threads", "1", "--quiet", *extra])


def assert_refused(result: Result, tmp_path: Path, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    one_error(result, *fragments)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # nothing written


NOT_OPTIONAL = [key for key, field in FIELDS.items() if not field.optional]


@pytest.mark.parametrize("key", NOT_OPTIONAL)
def test_null_for_a_required_key_is_refused(runner: CliRunner, tmp_path: Path, key: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"{key}:\n")  # a bare key is null in YAML: the classic forgotten value
    assert_refused(fit_with_config(runner, tmp_path, config), tmp_path, f"invalid {key} (from {config})",
                   "got nothing (an empty value)")


@pytest.mark.parametrize("text, key, shown", [
    ("lr: [0.1]\n", "lr", "got [0.1]"),
    ("lr: {value: 0.1}\n", "lr", "got {'value': 0.1}"),
    ('epochs: "3"\n', "epochs", "got '3'"),
    ("batch_size: 10000000000\n", "batch_size", "got 10000000000"),
    ("epochs: 1000000\n", "epochs", "got 1000000"),
    ("seed: 99999999999999999999999999\n", "seed", "got 99999999999999999999999999"),
    ("lr: .inf\n", "lr", "got inf"),
    ("dropout: .nan\n", "dropout", "got nan"),
    ("nesterov: maybe\n", "nesterov", "got 'maybe'"),
    ("hidden: [8.5]\n", "hidden", "got [8.5]"),
], ids=["list-for-scalar", "mapping-for-scalar", "string-number", "huge-batch", "huge-epochs", "huge-seed",
        "inf", "nan", "not-a-bool", "fractional-width"])
def test_wrong_type_or_absurd_value_names_the_key(runner: CliRunner, tmp_path: Path, text: str, key: str,
                                                  shown: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert_refused(fit_with_config(runner, tmp_path, config), tmp_path, f"invalid {key} (from {config})", shown)


@pytest.mark.parametrize("content, fragments", [
    (b"lr: 0.1\n\tepochs: 3\n", ["not valid YAML at line 2", "'\\t'"]),
    (b"hidden:\n\t- 8\n", ["not valid YAML at line 2"]),
    (b"\xff\xfe\x00\x81\x80lr: 1\n", ["cannot read config file", "utf-8"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["cannot read config file"]),
    (b"just a sentence\n", ["must be a mapping", "str"]),
], ids=["tab-indent", "tab-in-list", "non-utf8", "png", "scalar-document"])
def test_unparseable_config_file(runner: CliRunner, tmp_path: Path, content: bytes, fragments: list[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    assert_refused(fit_with_config(runner, tmp_path, config), tmp_path, str(config), *fragments)


def test_config_that_is_a_directory_or_missing(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "configs.d").mkdir()
    result = fit_with_config(runner, tmp_path, tmp_path / "configs.d")
    assert_refused(result, tmp_path, f"cannot read config file {tmp_path / 'configs.d'}", "Is a directory")
    result = fit_with_config(runner, tmp_path, tmp_path / "missing.yaml")
    assert_refused(result, tmp_path, f"cannot read config file {tmp_path / 'missing.yaml'}")


def test_duplicate_key_in_config_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: 0.1\nepochs: 3\nlr: 0.2\n")
    assert_refused(fit_with_config(runner, tmp_path, config), tmp_path, "'lr'", "twice")


def test_exponent_without_a_dot_is_a_number(runner: CliRunner, fake: Fake, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"dataset: {fake.source}\nhidden: [8]\nepochs: 1\nval_size: 20\nlr: 1e-2\neps: 1e-8\n")
    result = fit_with_config(runner, tmp_path, config)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["lr"] == 0.01


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n"], ids=["empty", "comment", "marker"])
def test_empty_config_means_all_defaults(runner: CliRunner, fake: Fake, tmp_path: Path, text: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    # Valid: it fails only later, because the default data set (mnist) is not there (exit 1, not 2).
    result = fit_with_config(runner, tmp_path, config)
    assert result.exit_code == 1, result.output
    one_error(result, "could not download train-images-idx3-ubyte.gz", "(no such file)")
    assert not (tmp_path / "run").exists()
    if text == "":
        # …and with data and a few flags it trains, every other key at its default.
        result = fit_with_config(runner, tmp_path, config, "--dataset", str(fake.source), "--hidden", "8",
                                 "--epochs", "1", "--val-size", "20")
        assert result.exit_code == 0, result.output
        resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
        assert resolved["lr"] == 0.05 and resolved["batch_size"] == 128 and resolved["activation"] == "relu"


def test_absurd_hidden_widths_fail_cleanly(fake: Fake, tmp_path: Path) -> None:
    import resource

    def limit_memory() -> None:  # so the attempt fails fast on any machine, whatever its RAM
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    config = tmp_path / "c.yaml"
    config.write_text(f"dataset: {fake.source}\nhidden: [100000, 100000]\nepochs: 1\nval_size: 20\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    done = subprocess.run([sys.executable, "-m", "mlptrain", "fit", "--config", str(config), "--threads", "1",
                           "--quiet", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          preexec_fn=limit_memory, env=env, timeout=60)
    assert done.returncode in (1, 2)
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")], done.stderr[-500:]
    assert not (tmp_path / "run").exists()


# --- 6. damaged weights, run directories and checkpoints -------------------------------------


@dataclass(frozen=True)
class Finished:
    run: Path  # a complete run (never modify: copy it)
    checkpoint: dict[str, np.ndarray]  # the state after epoch 1, as save_checkpoint got it
    tiny: Path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    root = tmp_path_factory.mktemp("finished")
    tiny = write_dataset(root / "tiny")
    first: dict[str, np.ndarray] = {}
    real = experiment.save_checkpoint

    def keep_first(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
        real(run_dir, arrays)
        if not first:
            first.update({key: np.array(value, copy=True) for key, value in arrays.items()})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "save_checkpoint", keep_first)
        result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_TINY, "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads(str(first["state_json"]))["progress"]["epoch"] == 1
    return Finished(root / "run", first, tiny)


def copy_run(finished: Finished, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished.run, tmp_path / "run"))


def unfinished(finished: Finished, tmp_path: Path, checkpoint: dict[str, np.ndarray] | bytes) -> Path:
    """The finished run turned back into one cut after epoch 1, with the given checkpoint.npz."""
    run = copy_run(finished, tmp_path)
    (run / "summary.json").unlink()
    (run / "weights.npz").unlink()
    if isinstance(checkpoint, bytes):
        (run / "checkpoint.npz").write_bytes(checkpoint)
    else:
        np.savez(run / "checkpoint.npz", **checkpoint)
    return run


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class _Trap:
    """Unpickling this creates a file: proof that someone unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def trap_array(sentinel: Path) -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = _Trap(sentinel)
    return array


def test_the_pickle_trap_is_live(tmp_path: Path) -> None:
    """Self-check of the tests below: np.load with allow_pickle=True does spring the trap."""
    np.savez(tmp_path / "t.npz", W0=trap_array(tmp_path / "sprung"))
    with np.load(tmp_path / "t.npz", allow_pickle=True) as npz:
        npz["W0"]
    assert (tmp_path / "sprung").exists()


@pytest.mark.parametrize("damage", ["cut-in-half", "flipped-byte", "empty"])
def test_eval_on_damaged_weights(runner: CliRunner, finished: Finished, tmp_path: Path, damage: str) -> None:
    run = copy_run(finished, tmp_path)
    weights = run / "weights.npz"
    data = weights.read_bytes()
    if damage == "cut-in-half":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flipped-byte":
        flip_byte(weights, len(data) // 3)  # inside a member: its CRC no longer matches
    else:
        weights.write_bytes(b"")
    result = runner.invoke(cli, ["eval", str(run)])
    assert result.exit_code == 1
    one_error(result, str(weights), "unreadable or not an .npz file", "re-run fit")
    assert not (run / "eval.json").exists()


def test_object_arrays_are_refused_without_unpickling(runner: CliRunner, finished: Finished, tmp_path: Path) -> None:
    sentinel = tmp_path / "unpickled"
    run = copy_run(finished, tmp_path)
    with np.load(run / "weights.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    np.savez(run / "weights.npz", **{**arrays, "W0": trap_array(sentinel)})
    result = runner.invoke(cli, ["eval", str(run)])
    assert result.exit_code == 1
    one_error(result, str(run / "weights.npz"), "Object arrays cannot be loaded")
    assert not sentinel.exists()

    shutil.rmtree(run)
    run = unfinished(finished, tmp_path, {**finished.checkpoint, "param0": trap_array(sentinel)})
    result = runner.invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])
    assert result.exit_code == 1
    one_error(result, str(run / "checkpoint.npz"), "Object arrays cannot be loaded")
    assert not sentinel.exists()
    assert not (run / "summary.json").exists()


@pytest.mark.parametrize("file, content, fragment", [
    ("summary.json", b"\x00\xff\xfe garbage {", "is unreadable or not JSON"),
    ("summary.json", b'{"status": "complete", "stop_reason": ', "is unreadable or not JSON"),
    ("metrics.jsonl", b"not json at all\n", "is unreadable or not JSON lines"),
    ("metrics.jsonl", b'{"epoch": 1, "train_loss": 0.5}\n{"epoch": 2, "train_lo', "is unreadable or not JSON lines"),
    ("metrics.jsonl", b"\x89\x00\xff\xfe\n", "is unreadable or not JSON lines"),
    ("config.yaml", b"\xff\xfe\x00binary", "is unreadable or not YAML"),
    ("config.yaml", b"- just\n- a list\n", "is not a config mapping"),
], ids=["summary-binary", "summary-cut", "metrics-text", "metrics-cut-line", "metrics-binary", "config-binary",
        "config-list"])
def test_inspect_on_garbage_run_files(runner: CliRunner, finished: Finished, tmp_path: Path, file: str,
                                      content: bytes, fragment: str) -> None:
    run = copy_run(finished, tmp_path)
    (run / file).write_bytes(content)
    result = runner.invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 1
    one_error(result, str(run / file), fragment)
    assert result.stdout == ""


@pytest.mark.parametrize("file, content", [
    ("summary.json", b"{}"), ("summary.json", b"[1, 2]"), ("metrics.jsonl", b"{}\n"), ("metrics.jsonl", b"[1, 2]\n"),
], ids=["summary-empty-object", "summary-list", "metrics-empty-object", "metrics-list"])
def test_inspect_on_run_files_of_the_wrong_shape(runner: CliRunner, finished: Finished, tmp_path: Path, file: str,
                                                 content: bytes) -> None:
    run = copy_run(finished, tmp_path)
    (run / file).write_bytes(content)
    result = runner.invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 1
    one_error(result, str(run / file))


def test_resume_with_a_damaged_checkpoint(runner: CliRunner, finished: Finished, tmp_path: Path) -> None:
    def resume(run: Path) -> Result:
        return runner.invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])

    good = finished.checkpoint
    damaged: dict[str, dict[str, np.ndarray] | bytes] = {
        "cut in half": npz_bytes(good)[: len(npz_bytes(good)) // 2],
        "no param1": {k: v for k, v in good.items() if k != "param1"},
        "no state_json": {k: v for k, v in good.items() if k != "state_json"},
        "no optimizer state": {k: v for k, v in good.items() if not k.startswith("opt_")},
        "wrong shape": {**good, "param0": np.zeros((3, 3), np.float32)},
        "state not JSON": {**good, "state_json": np.array("{not json")},
    }
    for case, checkpoint in damaged.items():
        run = unfinished(finished, tmp_path, checkpoint)
        result = resume(run)
        assert result.exit_code == 1, (case, result.output)
        one_error(result, str(run / "checkpoint.npz"))
        assert not (run / "summary.json").exists() and not (run / "weights.npz").exists(), case
        shutil.rmtree(run)
    # The control: the same run with the intact checkpoint resumes and completes.
    run = unfinished(finished, tmp_path, good)
    result = resume(run)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3


def test_resume_with_a_checkpoint_whose_state_has_wrong_types(runner: CliRunner, finished: Finished,
                                                               tmp_path: Path) -> None:
    state = json.loads(str(finished.checkpoint["state_json"]))
    state["progress"]["epoch"] = "one"
    run = unfinished(finished, tmp_path, {**finished.checkpoint, "state_json": np.array(json.dumps(state))})
    result = runner.invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])
    assert result.exit_code == 1
    one_error(result, str(run / "checkpoint.npz"))


def test_resume_removes_temporary_files_left_by_a_kill(runner: CliRunner, finished: Finished, tmp_path: Path) -> None:
    run = unfinished(finished, tmp_path, finished.checkpoint)
    stale = run / ".checkpoint.npz.k9x2ab7q.tmp"
    stale.write_bytes(npz_bytes(finished.checkpoint)[:100])  # what the killed writer had got to
    (run / ".diagnostics.json.q1w2e3r4.tmp").write_text('{"n_cla')  # a kill can land in any file's write
    result = runner.invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run.iterdir()) == [
        "config.yaml", "diagnostics.json", "metrics.jsonl", "state.npz", "summary.json", "weights.npz"]


# --- 7. kill -9 in the middle of a real `python -m mlptrain fit` ------------------------------

KILL_EPOCHS = 100


def without_seconds(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_kill_9_mid_fit_then_resume_equals_an_uninterrupted_run(runner: CliRunner, tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    args = ["fit", "--dataset", str(tiny), "--epochs", str(KILL_EPOCHS), "--hidden", "8", "--val-size", "20",
            "--batch-size", "64", "--init", "he-normal", "--threads", "1", "--quiet"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    rng = random.Random(20261127)
    target_epoch = rng.randint(2, KILL_EPOCHS // 2)
    jitter = rng.uniform(0.0, 0.03)  # a random moment inside the epoch after the target

    run = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-m", "mlptrain", *args, "--out", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint.npz").exists():
            assert child.poll() is None and time.time() < deadline, "fit ended before its first checkpoint"
            time.sleep(0.002)
        metrics = run / "metrics.jsonl"  # written just after the checkpoint
        while not metrics.exists() or len(metrics.read_bytes().splitlines()) < target_epoch:
            assert child.poll() is None and time.time() < deadline, "fit ended before the kill"
            time.sleep(0.002)
        time.sleep(jitter)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    # Clearly incomplete, and every file there is whole.
    names = sorted(p.name for p in run.iterdir())
    visible = [name for name in names if not name.startswith(".")]
    assert visible == ["checkpoint.npz", "config.yaml", "diagnostics.json", "metrics.jsonl"], names
    assert ".lock" in names  # the dead owner's lock file stays; it must not block the resume below
    assert all(TEMP_FILE.match(name) for name in names if name.startswith(".") and name != ".lock"), names
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert isinstance(config, dict) and config["epochs"] == KILL_EPOCHS and config["hidden"] == [8]
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    epochs_logged = [json.loads(line)["epoch"] for line in text.splitlines()]
    assert epochs_logged == list(range(1, len(epochs_logged) + 1)) and len(epochs_logged) >= target_epoch
    with np.load(run / "checkpoint.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    checkpoint_epoch = json.loads(str(arrays["state_json"]))["progress"]["epoch"]
    # The checkpoint is written before the metrics: the kill may fall between the two.
    assert checkpoint_epoch in (len(epochs_logged), len(epochs_logged) + 1)
    assert {"param0", "param3", "opt_velocity0"} <= set(arrays)

    resumed = subprocess.run([sys.executable, "-m", "mlptrain", "fit", "--resume", str(run), "--quiet",
                              "--threads", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_run"] == KILL_EPOCHS and summary["resumed"] is True
    assert [p.name for p in sorted(run.iterdir()) if not p.name.startswith(".")] == [
        "config.yaml", "diagnostics.json", "metrics.jsonl", "state.npz", "summary.json", "weights.npz"]

    whole = tmp_path / "whole"
    result = runner.invoke(cli, [*args, "--out", str(whole)])
    assert result.exit_code == 0, result.output
    assert without_seconds(run) == without_seconds(whole)
    with np.load(run / "weights.npz") as a, np.load(whole / "weights.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert summary["test"] == json.loads((whole / "summary.json").read_text())["test"]


def test_signals_are_held_inside_a_deferred_block_even_with_other_threads() -> None:
    """A process signal goes to any thread that does not block it (BLAS keeps a pool); the
    block must still hold it until the files written together are all written."""
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait, daemon=True)  # a thread the kernel may deliver to
    bystander.start()
    reached_end = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with fsutil.signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)  # long enough for any delivery; a held signal must not interrupt this
                reached_end = True
    finally:
        stop.set()
        bystander.join()
    assert reached_end


def test_deferred_block_leaves_an_ignored_sigint_ignored_and_delivers_sigterm() -> None:
    """A sweep worker ignores SIGINT (the parent handles Ctrl-C); a SIGTERM held behind it must still come."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    class Term(Exception):
        pass

    def on_term(signum: int, frame: object) -> None:
        raise Term

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    try:
        with pytest.raises(Term):
            with fsutil.signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
