"""Shared pytest fixtures, one section per concern."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from httpserver import LoopbackServer

# --- loopback HTTP server (tests/httpserver.py) ------------------------------------


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A scriptable HTTP server on 127.0.0.1, shut down at teardown."""
    # A proxy from the environment must not intercept requests to the loopback server.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with LoopbackServer() as server:
        yield server
