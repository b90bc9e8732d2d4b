"""The ``data download|verify|list`` commands (and ``fit`` by known name) with CliRunner.

A fake "tiny" entry, built from a synthetic IDX data set, is put into the live
``DATASETS`` table; its mirrors point at the loopback HTTP server or at a
directory, so nothing here touches the real network.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.data import datasets
from mlptrain.data.datasets import FILE_NAMES, DatasetSpec, RemoteFile

from httpserver import LoopbackServer
from synthetic import write_dataset


@dataclass(frozen=True)
class Tiny:
    """The fake data set: its spec, the source files and the loopback server serving them."""

    spec: DatasetSpec
    source: Path  # a directory holding the four files (usable as a --mirror)
    payloads: dict[str, bytes]
    server: LoopbackServer


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tiny(tmp_path: Path, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Tiny:
    for name in ("MLPTRAIN_MIRROR", "MLPTRAIN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)  # the caller's environment must not steer the tests
    source = write_dataset(tmp_path / "source", n_train=120, n_test=40)
    payloads = {name: (source / name).read_bytes() for name in FILE_NAMES}
    files = tuple(
        RemoteFile(name, len(body), hashlib.sha256(body).hexdigest(), None) for name, body in payloads.items()
    )
    base = http_server.serve_files("tiny", payloads)
    spec = DatasetSpec("tiny", "synthetic test data", files, (base,), ("a", "b", "c"))
    monkeypatch.setitem(datasets.DATASETS, "tiny", spec)
    return Tiny(spec, source, payloads, http_server)


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli, list(args), env=env)


def download(runner: CliRunner, data_dir: Path, *extra: str, env: dict[str, str] | None = None):
    return invoke(runner, "data", "download", "--dataset", "tiny", "--data-dir", str(data_dir), *extra, env=env)


def assert_cached(tiny: Tiny, data_dir: Path) -> None:
    """``data_dir/tiny`` holds exactly the four files, byte for byte."""
    cached = data_dir / "tiny"
    assert sorted(p.name for p in cached.iterdir() if ".decoded." not in p.name) == sorted(FILE_NAMES)
    for name, body in tiny.payloads.items():
        assert (cached / name).read_bytes() == body


def flip_byte(path: Path, offset: int = 20) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def list_states(output: str) -> dict[str, str]:
    """``data list`` rows as name -> state (the column after files and MB)."""
    rows = output.splitlines()[1:-1]  # between the header and the "cache:" line
    return {row.split()[0]: row.split()[3] if row.split()[3] != "not" else "not cached" for row in rows}


# --- download ---------------------------------------------------------------------


def test_choices_follow_the_live_table(runner: CliRunner, tiny: Tiny) -> None:
    """An entry added to DATASETS after import is a valid --dataset for every data command."""
    result = invoke(runner, "data", "download", "--dataset", "nope", "--data-dir", "x")
    assert result.exit_code == 2 and "unknown data set 'nope'; choose one of: " in result.stderr
    assert ", ".join(datasets.DATASETS) in result.stderr and "tiny" in result.stderr


def test_download_over_http_then_from_the_cache(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    data_dir = tmp_path / "cache"
    result = download(runner, data_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"tiny: verified in {data_dir / 'tiny'}\n"
    assert_cached(tiny, data_dir)
    assert {name: tiny.server.hits(f"/tiny/{name}") for name in FILE_NAMES} == dict.fromkeys(FILE_NAMES, 1)

    before = tiny.server.total_hits
    result = download(runner, data_dir)
    assert result.exit_code == 0 and "tiny: verified in" in result.stdout
    assert tiny.server.total_hits == before  # all four cached and intact: no request at all


def test_mirror_flag_takes_a_directory(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    result = download(runner, tmp_path / "cache", "--mirror", str(tiny.source))
    assert result.exit_code == 0, result.output
    assert_cached(tiny, tmp_path / "cache")
    assert tiny.server.total_hits == 0  # the mirror replaced the spec's mirrors


def test_mirror_and_data_dir_from_the_environment(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    data_dir = tmp_path / "env-cache"
    env = {"MLPTRAIN_MIRROR": tiny.source.as_uri(), "MLPTRAIN_DATA_DIR": str(data_dir)}
    result = invoke(runner, "data", "download", "--dataset", "tiny", env=env)
    assert result.exit_code == 0, result.output
    assert str(data_dir / "tiny") in result.stdout
    assert_cached(tiny, data_dir)
    assert tiny.server.total_hits == 0


def test_every_mirror_failing_is_one_error_line_and_no_files(
    runner: CliRunner, tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tiny.server.url("gone/")
    second = tiny.server.url("also-gone/")
    monkeypatch.setitem(datasets.DATASETS, "tiny", replace(tiny.spec, mirrors=(first, second)))
    data_dir = tmp_path / "cache"
    result = download(runner, data_dir)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: could not download {FILE_NAMES[0]}: ")
    assert f"{first}{FILE_NAMES[0]} (HTTP 404)" in lines[0] and f"{second}{FILE_NAMES[0]} (HTTP 404)" in lines[0]
    assert "--mirror" in lines[0] and "Traceback" not in result.output
    assert not data_dir.exists()  # nothing, not even a .part file or the empty directories it made
    assert tiny.server.hits(f"/gone/{FILE_NAMES[0]}") == 1  # a 404 is not retried


def test_a_missing_mirror_directory_fails_cleanly(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    result = download(runner, tmp_path / "cache", "--mirror", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and result.stderr.startswith("Error: could not download")
    assert "(no such file)" in result.stderr and "Traceback" not in result.output
    assert [p for p in (tmp_path / "cache").rglob("*") if not p.is_dir()] == []


# --- verify -----------------------------------------------------------------------


def test_verify(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    data_dir = tmp_path / "cache"
    assert download(runner, data_dir).exit_code == 0
    result = invoke(runner, "data", "verify", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert len(rows) == 4 and all(row.split() == ["tiny", name, "ok"] for row, name in zip(rows, FILE_NAMES))
    assert result.stderr == ""

    flip_byte(data_dir / "tiny" / FILE_NAMES[2])
    result = invoke(runner, "data", "verify", "--data-dir", str(data_dir))
    assert result.exit_code == 1
    states = {row.split()[1]: row.split()[2] for row in result.stdout.splitlines()}
    assert states == {**dict.fromkeys(FILE_NAMES, "ok"), FILE_NAMES[2]: "CORRUPT"}
    assert result.stderr == ("Error: 1 file(s) missing or corrupt; run: mlptrain data download --dataset tiny "
                             f"--data-dir {data_dir}\n")

    (data_dir / "tiny" / FILE_NAMES[1]).unlink()
    result = invoke(runner, "data", "verify", "--dataset", "tiny", "--data-dir", str(data_dir))
    assert result.exit_code == 1 and "2 file(s) missing or corrupt" in result.stderr
    states = {row.split()[1]: row.split()[2] for row in result.stdout.splitlines()}
    assert states[FILE_NAMES[1]] == "MISSING" and states[FILE_NAMES[2]] == "CORRUPT"
    assert states[FILE_NAMES[0]] == states[FILE_NAMES[3]] == "ok"

    # download repairs exactly what verify reported
    assert download(runner, data_dir).exit_code == 0
    assert invoke(runner, "data", "verify", "--data-dir", str(data_dir)).exit_code == 0
    assert_cached(tiny, data_dir)


def test_verify_an_empty_cache(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    for data_dir in (tmp_path / "empty", tmp_path / "does-not-exist"):
        data_dir.parent.mkdir(exist_ok=True)
        if data_dir.name == "empty":
            data_dir.mkdir()
        result = invoke(runner, "data", "verify", "--data-dir", str(data_dir))
        assert result.exit_code == 0, result.output
        assert result.stdout == (f"no data sets cached in {data_dir}; run: mlptrain data download --dataset mnist "
                                 f"--data-dir {data_dir}\n")


def test_verify_a_named_but_uncached_data_set(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    result = invoke(runner, "data", "verify", "--dataset", "tiny", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "4 file(s) missing or corrupt" in result.stderr
    assert [row.split()[2] for row in result.stdout.splitlines()] == ["MISSING"] * 4


# --- list -------------------------------------------------------------------------


def test_list_states(runner: CliRunner, tiny: Tiny, tmp_path: Path) -> None:
    data_dir = tmp_path / "cache"

    def states() -> dict[str, str]:
        result = invoke(runner, "data", "list", "--data-dir", str(data_dir))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1] == f"cache: {data_dir.resolve()}"
        return list_states(result.stdout)

    assert states() == dict.fromkeys(datasets.DATASETS, "not cached")
    assert "tiny" in datasets.DATASETS and len(datasets.DATASETS) > 1
    assert download(runner, data_dir).exit_code == 0
    assert states() == {**dict.fromkeys(datasets.DATASETS, "not cached"), "tiny": "verified"}
    result = invoke(runner, "data", "list", "--data-dir", str(data_dir))
    tiny_row = next(row for row in result.stdout.splitlines() if row.startswith("tiny "))
    assert tiny_row.split()[1] == "4/4" and "synthetic test data" in tiny_row

    flip_byte(data_dir / "tiny" / FILE_NAMES[0])
    assert states()["tiny"] == "CORRUPT"
    assert download(runner, data_dir).exit_code == 0  # repair
    assert states()["tiny"] == "verified"
    (data_dir / "tiny" / FILE_NAMES[3]).unlink()
    assert states()["tiny"] == "partial"
    result = invoke(runner, "data", "list", "--data-dir", str(data_dir))
    assert next(row for row in result.stdout.splitlines() if row.startswith("tiny ")).split()[1] == "3/4"


# --- fit by known name ------------------------------------------------------------


def test_fit_downloads_a_known_data_set_and_records_its_checksums(
    runner: CliRunner, tiny: Tiny, tmp_path: Path
) -> None:
    data_dir, out = tmp_path / "cache", tmp_path / "run"
    result = invoke(runner, "fit", "--dataset", "tiny", "--mirror", str(tiny.source), "--data-dir", str(data_dir),
                    "--hidden", "8", "--epochs", "1", "--val-size", "20", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert_cached(tiny, data_dir)
    summary = json.loads((out / "summary.json").read_text())
    record = summary["dataset"]
    assert record["name"] == "tiny" and record["directory"] == str((data_dir / "tiny").resolve())
    assert record["n_train"] == 120 and record["n_test"] == 40 and record["n_classes"] == 3
    assert record["sha256"] == {f.name: f.sha256 for f in tiny.spec.files}
    assert tiny.server.total_hits == 0


def test_the_data_directory_is_the_per_user_cache_unless_told(runner: CliRunner, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Not ./data: after a cd, the cache is still where it was. MLPTRAIN_DATA_DIR and --data-dir override it."""
    monkeypatch.delenv("MLPTRAIN_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert invoke(runner, "data", "list").stdout.splitlines()[-1] == f"cache: {tmp_path / 'xdg' / 'mlptrain'}"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: a relative path is ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_cache = tmp_path / "home" / ".cache" / "mlptrain"
    assert invoke(runner, "data", "list").stdout.splitlines()[-1] == f"cache: {home_cache}"
    monkeypatch.setenv("MLPTRAIN_DATA_DIR", str(tmp_path / "env"))
    assert invoke(runner, "data", "list").stdout.splitlines()[-1] == f"cache: {tmp_path / 'env'}"
    result = invoke(runner, "data", "list", "--data-dir", str(tmp_path / "flag"))
    assert result.stdout.splitlines()[-1] == f"cache: {tmp_path / 'flag'}"
    assert not (tmp_path / "data").exists()


def test_make_demo_keeps_the_repositorys_data_directory() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "MLPTRAIN_DATA_DIR=$(DEMO_DATA)" in demo and "DEMO_DATA ?= data" in makefile
