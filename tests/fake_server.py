"""What the test servers (tests/fake_lenses.py, tests/fake_metabase.py) share: a threaded HTTP
server on a free loopback port whose handler reaches the fake through `server.fake`."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """Mixed into a fake's dataclass, which holds `url`, `_server` and `_stopping`."""

    url: str
    _server: ThreadingHTTPServer | None
    _stopping: threading.Event

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        server.handle_error = lambda *_: None  # type: ignore[method-assign]  # clients that timed out
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
