"""A local test server for the Lenses 6 HQ API: login, environments, and the SQL processors of
an environment's agent reached through HQ's proxy, answering only in the shapes the public
sources give, with knobs for what a real HQ does under load (conflicts, slow answers) and for
changes made in the Lenses UI.

Sources (read 2026-12):
- Login: docs.lenses.io/latest/api-reference/6.1/reference/login (POST /api/v1/login
  {username, password}; 204 with a Set-Cookie) and .../6.3/reference/login (200 with a body,
  hq_LoginResponse). The session cookie is `session_id` (the spec's cookieAuth scheme).
- Environments: docs.lenses.io/latest/api-reference/reference/environments and
  .../resources/api-reference/lenses-api-spec/environments: GET /api/v1/environments ->
  {"items": [...]}; GET /api/v1/environments/{name} -> {name, display_name, lrn, id,
  created_at, tier, status: {agent_connected, ...}, metadata}; POST {name (1-63, an
  hq-resource-name), display_name?, tier: development|staging|production, metadata?}, whose
  answer "is returned on creation, contains the agent key".
- Agent proxy: /api/v1/environments/{name}/proxy/<agent path> (lenses-api-spec, agentproxy).
- SQL processors: docs.lenses.io/latest/api-reference/reference/sql-streaming and
  .../6.3/reference/sql-streaming (OpenAPI): GET /api/v2/streams ->
  agent_HttpListSqlProcessorsApiResponse {"processors": [agent_HttpGetSqlProcessorApiResponse]};
  GET /api/v2/streams/{id} -> {id, application: {name, processorId, lrn, sql, inputTopics,
  outputTopics, otherSettings}, metadata: {description, tags, createdBy, createdAt,
  processorType}, deployment: {details: {replicas, otherSettings, labels, cluster,
  namespace}, status: {level, startedAt, stoppedAt, replicas}}, coverage} (required: id,
  application, metadata, deployment, coverage); POST /api/v2/streams {name (min 1), sql
  (min 1), processorId? (min 1), description? (min 1), tags?, deployment}. Agent errors are
  agent_BadRequest {"error", "errorType"?, "fields"?} (.../6.1/reference/sql-snapshot).
- lensesio/lenses-mcp src/lenses_mcp/tools/sql_processors.py @ 73754e35: the same paths, the
  deployment {"mode": "IN_PROC"}, and DELETE /api/v1/streams/{id} (v1); its HTTP client reads
  an HQ error's `title`.

Assumptions (no source confirms them; the client copes either way where it can):
- The create answer: 200 with the processor as GET returns it (the docs: "returns the
  processor ID and initial state"); `create_returns_id=False` answers without it.
- A taken processor name answers 409; delete answers 204; HQ's own errors carry `title`.
- The agent key field of the create-environment answer is `agent_key` (lenses-mcp's docs).
- `lrn` values are made up in form (their format is not documented); `processorType` is left
  out (its values are not documented).
"""

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
_ENVIRONMENT = re.compile(r"^/api/v1/environments(?:/(?P<name>[^/]+))?$")
ENVIRONMENT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""An hq-resource-name of 1 to 63 characters (lowercase letters, digits, inner hyphens)."""
TIERS = ("development", "staging", "production")
CREATED_AT = "2026-12-01T00:00:00Z"


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
    """200 with a body (Lenses 6.2/6.3) or 204 with none (6.1)."""
    create_returns_id: bool = True
    """False: the create answer carries no processor (the unconfirmed part of the API)."""
    conflicts: int = 0
    """The next N writes (POST/DELETE other than login) answer 409."""
    delay: float = 0.0
    """Seconds every call except login waits before answering."""
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """id -> the processor as GET answers it, plus `env`."""
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

    # --- what the tests look at, and changes made in the Lenses UI ---------------------------

    def named(self, name: str) -> dict[str, Any]:
        """The one processor called `name`."""
        (found,) = [p for p in self.processors.values() if p["application"]["name"] == name]
        return found

    def live(self) -> dict[str, str]:
        """Processor name -> its SQL."""
        return {p["application"]["name"]: p["application"]["sql"]
                for p in self.processors.values()}

    def add(self, name: str, sql: str, env: str = "dev") -> str:
        with self._lock:
            processor = _processor(name, sql, None, env)
            self.processors[processor["id"]] = processor
            return processor["id"]

    def drop(self, processor_id: str) -> None:
        with self._lock:
            del self.processors[processor_id]

    def set_sql(self, processor_id: str, sql: str) -> None:
        with self._lock:
            self.processors[processor_id]["application"]["sql"] = sql

    def set_description(self, processor_id: str, description: str) -> None:
        with self._lock:
            self.processors[processor_id]["metadata"]["description"] = description

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
            return 401, {"title": "Unauthorized"}, {}
        environment = _ENVIRONMENT.match(path)
        if environment:
            with self._lock:
                return self._environments(method, environment["name"], body)
        match = _STREAMS.match(path)
        if not match:
            return 404, {"title": f"no route {method} {path}"}, {}
        env, version, processor_id = match["env"], match["version"], match["id"]
        if env not in self.environments:
            return 404, {"title": f"environment {env} not found"}, {}
        with self._lock:
            if method in ("POST", "DELETE") and self.conflicts > 0:
                self.conflicts -= 1
                return 409, {"error": "Conflict: the agent is busy, try again"}, {}
            return self._streams(method, version, env, processor_id, body)

    def _login(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        user, password = (body or {}).get("username"), (body or {}).get("password")
        if (user, password) != (self.username, self.password):
            # Echoes what it was sent, as careless servers do, so masking is tested for real.
            return 401, {"title": f"invalid credentials for {user}:{password}"}, {}
        token = secrets.token_hex(8)
        self._sessions.add(token)
        cookie = {"Set-Cookie": f"session_id={token}; Path=/; HttpOnly; SameSite=Lax"}
        reply = {"user": user} if self.login_status == 200 else None
        return self.login_status, reply, cookie

    def _environments(self, method: str, name: str | None, body: Any) -> tuple[
        int, Any, dict[str, str]
    ]:
        known = {env: _environment(env) for env in self.environments}
        if (method, name) == ("GET", None):
            return 200, {"items": list(known.values())}, {}
        if method == "GET":
            return (200, known[name], {}) if name in known else (
                404, {"title": f"environment {name} not found"}, {})
        if (method, name) == ("POST", None):
            name = (body or {}).get("name") or ""
            if not ENVIRONMENT_NAME.match(name) or (body or {}).get("tier") not in TIERS:
                return 400, {"title": "name must be an hq-resource-name (1-63 lowercase "
                             "letters, digits, inner hyphens) and tier one of "
                             f"{', '.join(TIERS)}"}, {}
            if name in known:
                return 409, {"title": f"environment {name} already exists"}, {}
            created = {**_environment(name), "agent_key": f"agent_key_{secrets.token_hex(16)}"}
            self.environments = (*self.environments, name)
            return 200, created, {}
        return 405, {"title": f"{method} not allowed here"}, {}

    def _streams(
        self, method: str, version: str, env: str, processor_id: str | None, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        mine = {k: p for k, p in self.processors.items() if p["env"] == env}
        if (method, version, processor_id) == ("GET", "v2", None):
            return 200, {"processors": [_public(p) for p in mine.values()]}, {}
        if method == "GET" and version == "v2" and processor_id:
            found = mine.get(processor_id)
            return (200, _public(found), {}) if found else (
                404, {"error": f"SQL processor {processor_id} not found"}, {})
        if (method, version, processor_id) == ("POST", "v2", None):
            problems = _create_problems(body)
            if problems:
                return 400, {"error": "The request input was invalid",
                             "fields": [{"field": f, "error": e} for f, e in problems]}, {}
            if any(p["application"]["name"] == body["name"] for p in mine.values()):
                return 409, {"error": f"A processor named {body['name']} already exists"}, {}
            processor = _processor(body["name"], body["sql"], body.get("description"), env,
                                   body.get("tags") or [])
            self.processors[processor["id"]] = processor
            return 200, (_public(processor) if self.create_returns_id else None), {}
        if method == "DELETE" and version == "v1" and processor_id:
            if processor_id not in mine:
                return 404, {"error": f"SQL processor {processor_id} not found"}, {}
            del self.processors[processor_id]
            return 204, None, {}
        return 405, {"error": f"{method} not allowed here"}, {}


def _create_problems(body: Any) -> list[tuple[str, str]]:
    """What the create schema refuses: name and sql required (min length 1), description and
    processorId at least one character when present, deployment required."""
    if not isinstance(body, dict):
        return [("body", "a JSON object is required")]
    problems = [(key, "is required (min length 1)") for key in ("name", "sql")
                if not isinstance(body.get(key), str) or not body[key]]
    problems += [(key, "min length 1") for key in ("description", "processorId")
                 if key in body and not body[key]]
    if not isinstance(body.get("deployment"), dict):
        problems.append(("deployment", "is required"))
    return problems


def _processor(name: str, sql: str, description: str | None, env: str,
               tags: list[str] | None = None) -> dict[str, Any]:
    """A processor as GET /api/v2/streams/{id} answers it, right after an IN_PROC create; no
    `description` key when none was given (it has a minimum length of 1)."""
    processor_id = f"proc-{secrets.token_hex(4)}"
    metadata: dict[str, Any] = {"tags": list(tags or []), "createdBy": "admin",
                                "createdAt": CREATED_AT}
    if description:
        metadata["description"] = description
    return {
        "id": processor_id,
        "application": {
            "name": name,
            "processorId": processor_id,
            "lrn": f"lrn:environment/{env}/sql-processor/{processor_id}",
            "sql": sql,
            "inputTopics": [],
            "outputTopics": [],
            "otherSettings": {},
        },
        "metadata": metadata,
        "deployment": {
            "details": {"replicas": 1, "otherSettings": {}, "labels": {}},
            # The docs' example level; the user guide says processors do not start by
            # themselves ("click Start").
            "status": {"level": "NOT_RUNNING", "replicas": []},
        },
        "coverage": "full",
        "env": env,
    }


def _environment(name: str) -> dict[str, Any]:
    return {"name": name, "display_name": name, "lrn": f"lrn:environment/{name}",
            "id": f"env-{name}", "created_at": CREATED_AT, "tier": "development",
            "status": {"agent_connected": True}, "metadata": {}}


def _public(processor: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in processor.items() if k != "env"}


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
    """A fresh HQ test server per test, with the `dev` environment."""
    fake = FakeLenses()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
