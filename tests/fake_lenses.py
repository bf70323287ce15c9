"""A local stand-in for the Lenses 6 HQ API (login, SQL processors through the agent proxy), with
knobs for the failures a real HQ produces: conflicts, slow answers and out-of-band edits."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["FakeLenses", "Recorded", "lenses_fixture"]

_STREAMS = re.compile(
    r"^/api/v1/environments/(?P<env>[^/]+)/proxy/api/(?P<version>v1|v2)/streams(?:/(?P<id>[^/]+))?$"
)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeLenses:
    username: str = "admin"
    password: str = "hq-Pa55word!"
    environments: tuple[str, ...] = ("dev",)
    login_status: int = 200
    """200 (Lenses 6.3, with a body) or 204 (6.1)."""
    create_returns_id: bool = True
    """False: the create answer has no id, as some HQ versions do."""
    conflicts: int = 0
    """The next N writes (POST/DELETE other than login) answer 409."""
    delay: float = 0.0
    """Seconds every call except login waits before answering."""
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _sessions: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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

    # --- out-of-band changes, as a user in the Lenses UI would make them ----------------------

    def add(self, name: str, sql: str, env: str = "dev") -> str:
        with self._lock:
            processor_id = f"proc-{secrets.token_hex(4)}"
            self.processors[processor_id] = {
                "id": processor_id, "name": name, "sql": sql, "description": "", "env": env,
            }
            return processor_id

    def drop(self, processor_id: str) -> None:
        with self._lock:
            del self.processors[processor_id]

    def set_sql(self, processor_id: str, sql: str) -> None:
        with self._lock:
            self.processors[processor_id]["sql"] = sql

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path != "/api/v1/login"]

    # --- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[
        int, Any, dict[str, str]
    ]:
        with self._lock:
            self.requests.append(Recorded(method, path, body, headers))
        if path == "/api/v1/login" and method == "POST":
            return self._login(body)
        if self.delay:
            self._stopping.wait(self.delay)
        if _cookie(headers) not in self._sessions:
            return 401, {"message": "Unauthorized"}, {}
        match = _STREAMS.match(path)
        if not match:
            return 404, {"message": f"no route {method} {path}"}, {}
        env, version, processor_id = match["env"], match["version"], match["id"]
        if env not in self.environments:
            return 404, {"message": f"environment {env} not found"}, {}
        with self._lock:
            if method in ("POST", "DELETE") and self.conflicts > 0:
                self.conflicts -= 1
                return 409, {"message": "Conflict: the agent is busy, try again"}, {}
            return self._streams(method, version, env, processor_id, body)

    def _login(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        user, password = (body or {}).get("username"), (body or {}).get("password")
        if (user, password) != (self.username, self.password):
            # Echoes what it was sent, as careless servers do, so masking is tested for real.
            return 401, {"message": f"invalid credentials for {user}:{password}"}, {}
        token = secrets.token_hex(8)
        self._sessions.add(token)
        cookie = {"Set-Cookie": f"session_id={token}; Path=/; HttpOnly; SameSite=Lax"}
        reply = {"user": user} if self.login_status == 200 else None
        return self.login_status, reply, cookie

    def _streams(
        self, method: str, version: str, env: str, processor_id: str | None, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        mine = {k: p for k, p in self.processors.items() if p["env"] == env}
        if (method, version, processor_id) == ("GET", "v2", None):
            return 200, {"processors": [_public(p) for p in mine.values()]}, {}
        if method == "GET" and version == "v2" and processor_id:
            found = mine.get(processor_id)
            return (200, _public(found), {}) if found else (404, {"message": "not found"}, {})
        if (method, version, processor_id) == ("POST", "v2", None):
            if not body or not body.get("name") or not body.get("sql") or not body.get(
                "deployment", {}).get("mode"):
                return 400, {"message": "name, sql and deployment.mode are required"}, {}
            if any(p["name"] == body["name"] for p in mine.values()):
                return 409, {"message": f"A processor named {body['name']} already exists"}, {}
            new_id = f"proc-{secrets.token_hex(4)}"
            self.processors[new_id] = {
                "id": new_id, "name": body["name"], "sql": body["sql"],
                "description": body.get("description", ""), "env": env,
            }
            return 201, ({"id": new_id} if self.create_returns_id else {}), {}
        if method == "DELETE" and version == "v1" and processor_id:
            if processor_id not in mine:
                return 404, {"message": "not found"}, {}
            del self.processors[processor_id]
            return 204, None, {}
        return 405, {"message": f"{method} not allowed here"}, {}


def _public(processor: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in processor.items() if k != "env"} | {"status": "RUNNING"}


def _cookie(headers: dict[str, str]) -> str:
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), "")
    return next((part.split("=", 1)[1] for part in raw.split("; ")
                 if part.startswith("session_id=")), "")


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        fake: FakeLenses = self.server.fake  # type: ignore[attr-defined]
        status, reply, headers = fake.handle(self.command, self.path, body, dict(self.headers))
        data = b"" if reply is None else json.dumps(reply).encode()
        self.send_response(status)
        if "Set-Cookie" in headers:
            # A load balancer's cookie first, as real deployments send: the client must
            # still find the session cookie among several Set-Cookie headers.
            self.send_header("Set-Cookie", "AWSALB=affinity; Path=/")
        for key, value in headers.items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(name="lenses")
def lenses_fixture() -> Iterator[FakeLenses]:
    """A fresh fake HQ per test, with the `dev` environment."""
    fake = FakeLenses()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
