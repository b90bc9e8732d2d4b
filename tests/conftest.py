"""Shared pytest fixtures, one section per concern."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from httpserver import LoopbackServer

# --- the data directory ------------------------------------------------------------

# The suite never touches the real per-user cache (~/.cache/mlptrain): every command and every process the tests
# start finds its data directory here, unless a test says otherwise. Set at import, before any test runs.
_DATA_DIR = tempfile.TemporaryDirectory(prefix="mlptrain-test-data-")
os.environ["MLPTRAIN_DATA_DIR"] = _DATA_DIR.name
os.environ["XDG_CACHE_HOME"] = os.path.join(_DATA_DIR.name, "xdg-cache")


# --- loopback HTTP server (tests/httpserver.py) ------------------------------------


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A scriptable HTTP server on 127.0.0.1, shut down at teardown."""
    # A proxy from the environment must not intercept requests to the loopback server.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with LoopbackServer() as server:
        yield server


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """Close the figures a test drew without saving (tests that inspect a figure's axes keep it open):
    pyplot warns from the 21st open figure, and warnings are errors in this suite."""
    yield
    import sys

    close = getattr(sys.modules.get("matplotlib.pyplot"), "close", None)  # None while a thread still imports it
    if close is not None:
        close("all")
