"""A scriptable HTTP server on 127.0.0.1 for download tests.

Each path is given a list of ``Reply`` objects: request k gets reply k, and the
last reply repeats. Unknown paths get 404. Requests are counted per path.

    with LoopbackServer() as server:
        server.set("/m1/a.gz", status(500), ok(b"data"))   # fail once, then serve
        requests.get(server.url("/m1/a.gz"))
        assert server.hits("/m1/a.gz") == 1
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """What the server does for one request.

    ``content_length`` overrides the header (a value above ``len(body)`` makes a
    short body; the connection closes after the bytes sent). ``stall`` seconds are
    spent silent: before the status line when ``stall_after`` is None, otherwise
    after the headers and the first ``stall_after`` body bytes.
    """

    status: int = 200
    body: bytes = b""
    content_length: int | None = None
    stall: float = 0.0
    stall_after: int | None = None


def ok(body: bytes) -> Reply:
    """Serve ``body`` with status 200."""
    return Reply(body=body)


def status(code: int) -> Reply:
    """Answer with status ``code`` and a short text body."""
    return Reply(status=code, body=f"status {code}\n".encode())


def stall(seconds: float, body: bytes = b"", after: int | None = None) -> Reply:
    """Go silent for ``seconds``: before answering, or after ``after`` body bytes."""
    return Reply(body=body, stall=seconds, stall_after=after)


def short(body: bytes, claimed: int) -> Reply:
    """Send ``body`` under a Content-Length of ``claimed`` bytes, then hang up."""
    return Reply(body=body, content_length=claimed)


class LoopbackServer:
    """A threaded HTTP server bound to 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Set at close so stalled handlers wake up instead of holding teardown.
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = False  # so close() can join every handler thread
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def set(self, path: str, *replies: Reply) -> None:
        """Script the replies for ``path`` (request k gets reply k; the last repeats)."""
        if not replies:
            raise ValueError("give at least one Reply")
        with self._lock:
            self._routes["/" + path.lstrip("/")] = list(replies)

    def serve_files(self, prefix: str, files: dict[str, bytes]) -> str:
        """Serve each ``name: body`` under ``prefix``; return that directory's base URL."""
        for name, body in files.items():
            self.set(f"{prefix.strip('/')}/{name}", ok(body))
        return self.url(prefix.strip("/") + "/")

    def hits(self, path: str) -> int:
        """How many requests ``path`` has received."""
        with self._lock:
            return self._hits["/" + path.lstrip("/")]

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self._hits.values())

    def next_reply(self, path: str) -> Reply:
        """Count a request for ``path`` and return the reply scripted for it."""
        with self._lock:
            self._hits[path] += 1
            replies = self._routes.get(path)
            if not replies:
                return status(404)
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake stalled handlers, and join every thread."""
        self.stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()  # joins handler threads (daemon_threads is False)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to ``server``'s script."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # socket timeout: a handler can never block teardown for long

        def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
            reply = server.next_reply(self.path)
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests); nothing to report

        def _send(self, reply: Reply) -> None:
            if reply.stall and reply.stall_after is None:
                server.stopping.wait(reply.stall)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/octet-stream")
            length = len(reply.body) if reply.content_length is None else reply.content_length
            self.send_header("Content-Length", str(length))
            self.end_headers()
            head = reply.body if reply.stall_after is None else reply.body[: reply.stall_after]
            self.wfile.write(head)
            if reply.stall and reply.stall_after is not None:
                self.wfile.flush()
                server.stopping.wait(reply.stall)
                self.wfile.write(reply.body[reply.stall_after :])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output clean

    return Handler
