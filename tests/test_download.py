"""Tests for mlptrain.data.download and mlptrain.data.datasets, against a loopback HTTP server."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlptrain.data.datasets import DATASETS, FILE_NAMES, DatasetSpec, RemoteFile, get_dataset
from mlptrain.data.download import cache_status, ensure_dataset, file_checksum_ok, normalize_mirror
from mlptrain.errors import ConfigError, DataError, DownloadError

from httpserver import LoopbackServer, ok, short, stall, status

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Tiny stand-ins for the four files; distinct so a mix-up shows as a checksum failure.
PAYLOADS = {name: f"payload of {name}\n".encode() * (i + 1) for i, name in enumerate(FILE_NAMES)}
FAST = {"timeout": (2.0, 2.0), "retries": 3, "backoff": 0.0}


def remote(name: str, body: bytes, *, use_md5: bool = False) -> RemoteFile:
    sha = None if use_md5 else hashlib.sha256(body).hexdigest()
    return RemoteFile(name, len(body), sha, hashlib.md5(body).hexdigest())


def fake_spec(*mirrors: str, use_md5: bool = False) -> DatasetSpec:
    files = tuple(remote(name, PAYLOADS[name], use_md5=use_md5) for name in FILE_NAMES)
    return DatasetSpec("fake", "test data", files, tuple(mirrors), ("a", "b"))


def leftovers(directory: Path) -> list[str]:
    """Temporary files left in ``directory`` (there should never be any)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def assert_complete(dest: Path) -> None:
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILE_NAMES)
    for name in FILE_NAMES:
        assert (dest / name).read_bytes() == PAYLOADS[name]


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --- the happy path and the cache ---------------------------------------------------


def test_downloads_all_files_from_one_mirror(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    dest = ensure_dataset(fake_spec(base), tmp_path, **FAST)
    assert dest == tmp_path / "fake"
    assert_complete(dest)
    assert leftovers(dest) == []
    assert all(s.present and s.verified for s in cache_status(fake_spec(base), tmp_path))


def test_verified_cache_makes_no_request(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    ensure_dataset(fake_spec(base), tmp_path, **FAST)
    before = http_server.total_hits
    ensure_dataset(fake_spec(base), tmp_path, **FAST)
    assert http_server.total_hits == before == len(FILE_NAMES)


def test_corrupted_cached_file_is_downloaded_again(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    dest = ensure_dataset(fake_spec(base), tmp_path, **FAST)
    victim = dest / FILE_NAMES[2]
    data = bytearray(victim.read_bytes())
    data[3] ^= 0x01
    victim.write_bytes(bytes(data))
    verified = [s.verified for s in cache_status(fake_spec(base), tmp_path)]
    assert verified == [True, True, False, True]

    ensure_dataset(fake_spec(base), tmp_path, **FAST)
    assert victim.read_bytes() == PAYLOADS[FILE_NAMES[2]]
    assert http_server.hits(f"m1/{FILE_NAMES[2]}") == 2
    assert http_server.hits(f"m1/{FILE_NAMES[0]}") == 1


def test_md5_is_used_when_no_sha256(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    spec = fake_spec(base, use_md5=True)
    assert spec.files[0].sha256 is None
    assert_complete(ensure_dataset(spec, tmp_path, **FAST))
    wrong = RemoteFile("x", None, None, "0" * 32)
    assert not file_checksum_ok(tmp_path / "fake" / FILE_NAMES[0], wrong)


def test_cache_status_of_empty_cache(tmp_path: Path) -> None:
    statuses = cache_status(fake_spec("http://unused/"), tmp_path)
    assert [s.name for s in statuses] == list(FILE_NAMES)
    assert all(not s.present and s.size is None and s.verified is None for s in statuses)
    assert statuses[0].path == tmp_path / "fake" / FILE_NAMES[0]


# --- failing mirrors ----------------------------------------------------------------


def test_404_and_500_mirrors_fall_over_to_a_good_one(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    for name in FILE_NAMES:
        http_server.set(f"m1/{name}", status(404))
        http_server.set(f"m2/{name}", status(500))
    good = http_server.serve_files("m3", PAYLOADS)
    spec = fake_spec(http_server.url("m1/"), http_server.url("m2/"), good)
    assert_complete(ensure_dataset(spec, tmp_path, **FAST))
    first = FILE_NAMES[0]
    assert http_server.hits(f"m1/{first}") == 1  # 404 is final: no retry
    assert http_server.hits(f"m2/{first}") == 3  # 500 may pass: retried
    # Later files start at the mirror that worked instead of paying for dead ones again.
    assert http_server.hits(f"m1/{FILE_NAMES[1]}") == 0
    assert http_server.hits(f"m2/{FILE_NAMES[1]}") == 0


def test_transient_error_is_retried_on_the_same_mirror(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    http_server.set(f"m1/{FILE_NAMES[0]}", status(503), status(502), ok(PAYLOADS[FILE_NAMES[0]]))
    assert_complete(ensure_dataset(fake_spec(base), tmp_path, **FAST))
    assert http_server.hits(f"m1/{FILE_NAMES[0]}") == 3


def test_checksum_mismatch_tries_next_mirror(http_server: LoopbackServer, tmp_path: Path) -> None:
    tampered = {name: body.upper() for name, body in PAYLOADS.items()}  # same size, other bytes
    bad = http_server.serve_files("bad", tampered)
    good = http_server.serve_files("good", PAYLOADS)
    dest = ensure_dataset(fake_spec(bad, good), tmp_path, **FAST)
    assert_complete(dest)
    assert leftovers(dest) == []
    assert http_server.hits(f"bad/{FILE_NAMES[0]}") == 1  # a bad checksum is not retried


def test_all_mirrors_fail_names_every_url_and_reason(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    first = FILE_NAMES[0]
    http_server.set(f"m404/{first}", status(404))
    http_server.set(f"m500/{first}", status(500))
    http_server.set(f"html/{first}", ok(b"<html>Sign in</html>"))
    http_server.set(f"tampered/{first}", ok(PAYLOADS[first].upper()))
    refused = closed_port_url()
    mirrors = [http_server.url(p) for p in ("m404/", "m500/", "html/", "tampered/")] + [refused]
    with pytest.raises(DownloadError) as info:
        ensure_dataset(fake_spec(*mirrors), tmp_path, **FAST)
    message = str(info.value)
    assert "\n" not in message
    for base, reason in zip(
        mirrors,
        ["HTTP 404", "HTTP 500", "wrong size", "checksum mismatch", "connection refused"],
    ):
        assert f"{base}{first} ({reason}" in message
    assert f"download the four files by hand into {tmp_path / 'fake'}" in message
    assert "--mirror / MLPTRAIN_MIRROR" in message
    assert not (tmp_path / "fake").exists()  # no partial or temporary file, not even the empty directory


def test_stalled_server_times_out_and_next_mirror_is_used(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    first = FILE_NAMES[0]
    http_server.set(f"slow/{first}", stall(5.0))  # silent before answering
    http_server.set(f"slowbody/{first}", stall(5.0, PAYLOADS[first], after=4))  # silent mid-body
    good = http_server.serve_files("good", PAYLOADS)
    spec = fake_spec(http_server.url("slow/"), http_server.url("slowbody/"), good)
    options = {"timeout": (1.0, 0.3), "retries": 2, "backoff": 0.0}
    assert_complete(ensure_dataset(spec, tmp_path, **options))
    assert http_server.hits(f"slow/{first}") == 2
    assert http_server.hits(f"slowbody/{first}") == 2

    with pytest.raises(DownloadError, match=r"slow/\S+ \(timed out; 2 attempts\).*"
                                            r"slowbody/\S+ \(timed out; 2 attempts\)"):
        ensure_dataset(fake_spec(*spec.mirrors[:2]), tmp_path / "again", **options)


def test_short_body_is_detected_and_retried(http_server: LoopbackServer, tmp_path: Path) -> None:
    first = FILE_NAMES[0]
    body = PAYLOADS[first]
    base = http_server.serve_files("m1", PAYLOADS)
    http_server.set(f"m1/{first}", short(body[:5], claimed=len(body)), ok(body))
    assert_complete(ensure_dataset(fake_spec(base), tmp_path, **FAST))
    assert http_server.hits(f"m1/{first}") == 2

    http_server.set(f"m1/{first}", short(body[:5], claimed=len(body)))
    with pytest.raises(DownloadError, match="body cut short; 3 attempts"):
        ensure_dataset(fake_spec(base), tmp_path / "again", **FAST)
    assert not (tmp_path / "again").exists()  # nothing left behind, not even the directories it created


# --- local mirrors ------------------------------------------------------------------


def write_mirror_dir(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name, body in PAYLOADS.items():
        (directory / name).write_bytes(body)
    return directory


def test_file_url_mirror(tmp_path: Path) -> None:
    source = write_mirror_dir(tmp_path / "my mirror")  # a space, to exercise URL quoting
    url = source.as_uri()
    dest = ensure_dataset(fake_spec("http://127.0.0.1:9/never/"), tmp_path / "cache", mirror=url)
    assert_complete(dest)


def test_directory_mirror_relative_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mirror_dir(tmp_path / "files")
    spec = fake_spec("http://127.0.0.1:9/never/")
    assert_complete(ensure_dataset(spec, tmp_path / "c1", mirror=str(tmp_path / "files")))
    monkeypatch.chdir(tmp_path)
    assert_complete(ensure_dataset(spec, tmp_path / "c2", mirror="files"))


def test_directory_mirror_missing_file(tmp_path: Path) -> None:
    source = write_mirror_dir(tmp_path / "files")
    (source / FILE_NAMES[3]).unlink()
    with pytest.raises(DownloadError, match=rf"{FILE_NAMES[3]} \(no such file\)"):
        ensure_dataset(fake_spec("http://127.0.0.1:9/"), tmp_path / "c", mirror=str(source))


@pytest.mark.parametrize("damage", [lambda body: body.upper(), lambda body: body[:-1]])  # checksum, size
def test_a_damaged_file_on_the_chosen_mirror_is_named_as_such(tmp_path: Path, damage: Callable) -> None:
    source = write_mirror_dir(tmp_path / "files")
    (source / FILE_NAMES[2]).write_bytes(damage(PAYLOADS[FILE_NAMES[2]]))
    with pytest.raises(DownloadError) as info:
        ensure_dataset(fake_spec("http://127.0.0.1:9/"), tmp_path / "c", mirror=str(source))
    message = str(info.value)
    assert f"The mirror's copy of {FILE_NAMES[2]} fails its checksum" in message
    assert "replace it there with a good copy, or leave out --mirror" in message
    assert "point --mirror" not in message  # the user did: that is no help


def test_a_damaged_file_on_a_chosen_http_mirror_too(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m", {**PAYLOADS, FILE_NAMES[0]: PAYLOADS[FILE_NAMES[0]].upper()})
    with pytest.raises(DownloadError, match=rf"{FILE_NAMES[0]} \(checksum mismatch\)\. The mirror's copy"):
        ensure_dataset(fake_spec("http://127.0.0.1:9/"), tmp_path, mirror=base, **FAST)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.org/mnist", "https://example.org/mnist/"),
        ("http://example.org/mnist/", "http://example.org/mnist/"),
        ("  https://example.org/a/  ", "https://example.org/a/"),
        ("file:///srv/mnist", "file:///srv/mnist/"),
        ("file://localhost/srv/mnist/", "file://localhost/srv/mnist/"),
    ],
)
def test_normalize_mirror_urls(given: str, expected: str) -> None:
    assert normalize_mirror(given) == expected


def test_normalize_mirror_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_mirror("data") == (tmp_path / "data").as_uri() + "/"
    assert normalize_mirror(str(tmp_path)) == tmp_path.as_uri() + "/"
    assert normalize_mirror(str(tmp_path / "with space")).endswith("/with%20space/")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert normalize_mirror("~/m") == (tmp_path / "m").as_uri() + "/"


@pytest.mark.parametrize("bad", ["", "   ", "ftp://example.org/mnist/", "file://server/share/"])
def test_normalize_mirror_rejects(bad: str) -> None:
    with pytest.raises(DataError):
        normalize_mirror(bad)


# --- progress, interruption, concurrency, unwritable cache --------------------------


def recording_progress(log: list[tuple[str, int | None, int]]) -> Callable:
    """A ProgressFactory that records (desc, total, bytes advanced) per bar."""

    @contextlib.contextmanager
    def factory(desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        counted = [0]
        yield lambda n: counted.__setitem__(0, counted[0] + n)
        log.append((desc, total, counted[0]))

    return factory


def test_progress_receives_byte_counts(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m1", PAYLOADS)
    log: list[tuple[str, int | None, int]] = []
    ensure_dataset(fake_spec(base), tmp_path, progress=recording_progress(log), **FAST)
    assert log == [(name, len(body), len(body)) for name, body in PAYLOADS.items()]

    log.clear()
    source = write_mirror_dir(tmp_path / "files")
    progress = recording_progress(log)
    ensure_dataset(fake_spec(base), tmp_path / "c", mirror=str(source), progress=progress)
    assert log == [(name, len(body), len(body)) for name, body in PAYLOADS.items()]


def test_interrupt_leaves_no_temporary_file(http_server: LoopbackServer, tmp_path: Path) -> None:
    base = http_server.serve_files("m1", PAYLOADS)

    @contextlib.contextmanager
    def interrupting(desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        def advance(n: int) -> None:
            raise KeyboardInterrupt

        yield advance

    with pytest.raises(KeyboardInterrupt):
        ensure_dataset(fake_spec(base), tmp_path, progress=interrupting, **FAST)
    assert not (tmp_path / "fake").exists()


def test_concurrent_downloads_into_one_cache(http_server: LoopbackServer, tmp_path: Path) -> None:
    # Each reply is held back a little so the two downloads overlap file by file.
    for name, body in PAYLOADS.items():
        http_server.set(f"m1/{name}", stall(0.1, body, after=1))
    spec = fake_spec(http_server.url("m1/"))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            ensure_dataset(spec, tmp_path, **FAST)
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_complete(tmp_path / "fake")
    assert http_server.hits(f"m1/{FILE_NAMES[0]}") == 2  # both really downloaded


def test_unwritable_data_dir_is_a_data_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache should be")
    with pytest.raises(DataError, match="cannot create data directory .*not-a-dir"):
        ensure_dataset(fake_spec("http://127.0.0.1:9/"), blocker)


# --- the real table -----------------------------------------------------------------


def test_dataset_table_is_well_formed() -> None:
    assert {"mnist", "fashion-mnist", "kmnist"} <= set(DATASETS)
    for key, spec in DATASETS.items():
        assert spec.name == key
        assert tuple(f.name for f in spec.files) == FILE_NAMES
        assert spec.mirrors and all(m.endswith("/") for m in spec.mirrors)
        assert len(spec.class_names) == 10
        for f in spec.files:
            assert f.sha256 is None or len(f.sha256) == 64
            assert f.md5 is not None and len(f.md5) == 32
    assert DATASETS["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_get_dataset_unknown_lists_names() -> None:
    assert get_dataset("kmnist") is DATASETS["kmnist"]
    expected = f"unknown data set 'emnist'; choose one of: {', '.join(DATASETS)}; did you mean 'mnist'?"
    with pytest.raises(ConfigError) as error:
        get_dataset("emnist")
    assert str(error.value) == expected
    with pytest.raises(ConfigError, match="choose one of: .*[^?]$"):  # nothing close: no suggestion
        get_dataset("cifar10")


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_verify_against_the_table(name: str, tmp_path: Path) -> None:
    source = SHARED_DATA / name
    if not all((source / f).is_file() for f in FILE_NAMES):
        pytest.skip(f"real {name} files not found in {source}")
    dest = ensure_dataset(DATASETS[name], tmp_path, mirror=source.as_uri())
    assert all(s.verified for s in cache_status(DATASETS[name], tmp_path))
    assert leftovers(dest) == []
    for f in DATASETS[name].files:  # the md5s in the table are right too
        assert hashlib.md5((dest / f.name).read_bytes()).hexdigest() == f.md5
