"""A local test server for the Lenses 6 HQ API: login, environments, and the SQL processors and
topic metadata of an environment's agent reached through HQ's proxy, answering only in the
shapes the public sources give, with knobs for what a real HQ does under load (conflicts, slow
answers) and for changes made in the Lenses UI.

Sources (read 2026-12):
- Login: docs.lenses.io/latest/api-reference/6.1/reference/login (POST /api/v1/login
  {username, password}; 204 with a Set-Cookie) and .../6.3/reference/login (200 with a body,
  hq_LoginResponse). The session cookie is `session_id` (the spec's cookieAuth scheme).
- Environments: docs.lenses.io/latest/api-reference/reference/environments and
  .../resources/api-reference/lenses-api-spec/environments: GET /api/v1/environments ->
  {"items": [...]}; GET /api/v1/environments/{name} -> {name, display_name, lrn, id,
  created_at, tier, status: {agent_connected, ...}, metadata}; POST {name (1-63, an
  hq-resource-name), display_name?, tier: development|staging|production, metadata?}, whose
  answer "is returned on creation, contains the agent key"; DELETE /api/v1/environments/{name}
  answers with no content.
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
- Topic metadata: lensesio/lenses-mcp src/lenses_mcp/tools/topics.py @ c0cc062f (tools
  update_topic_metadata, get_topic_metadata, list_topic_metadata): POST
  /api/v1/metadata/topics {topicName, keyType, valueType (these three required), keySchema?,
  valueSchema?, description?, tags?, ...}; GET /api/metadata/topics/{topic} and GET
  /api/metadata/topics (no `v1`). Formats as it lists them: AVRO, JSON, CSV, XML, INT, LONG,
  STRING, BYTES (help.lenses.io data-formats adds PROTOBUF). lensesio/lenses-go
  pkg/api/client.go (5.x) DeleteTopicMetadata: DELETE /api/metadata/topics/{name}.
- Processors need their input's format: "Schemas must be available for Structured Data": the
  engine validates a query against its input topic's schema when the processor is created
  (docs.lenses.io user guide, process-data-with-sql-processors/concepts); an empty topic not
  created through Lenses has no format but BYTES until one is set (help.lenses.io
  data-formats).

Assumptions (no source confirms them; the client copes either way where it can):
- The create answer: 200 with the processor as GET returns it (the docs: "returns the
  processor ID and initial state"); `create_returns_id=False` answers without it.
- A taken processor name answers 409; delete answers 204; HQ's own errors carry `title`.
- The agent key field of the create-environment answer is `agent_key` (lenses-mcp's docs say
  the answer includes "the agent_key"); the answer is 200, a taken name 409, a delete 204; GET
  never shows the key again.
- `lrn` values are made up in form (their format is not documented); `processorType` is left
  out (its values are not documented).
- A processor whose input topic has no declared format is refused with 400 and an agent error
  (the docs say validation needs the schema, not how the refusal looks); the input topics are
  read from the SQL's FROM clauses.
- Setting topic metadata answers 200 with no body, deleting it 204; both the 6.x POST path
  (with `v1`) and the GET/DELETE paths (without) are as lenses-mcp and lenses-go use them.
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

from tests.fake_server import FakeServer

__all__ = ["FakeLenses", "Recorded", "lenses_fixture"]

_STREAMS = re.compile(
    r"^/api/v1/environments/(?P<env>[^/]+)/proxy/api/(?P<version>v1|v2)/streams(?:/(?P<id>[^/]+))?$"
)
_ENVIRONMENT = re.compile(r"^/api/v1/environments(?:/(?P<name>[^/]+))?$")
_METADATA = re.compile(
    r"^/api/v1/environments/(?P<env>[^/]+)/proxy/api/(?:v1/)?metadata/topics(?:/(?P<topic>[^/]+))?$"
)
_FROM = re.compile(r"\bFROM\s+`?([A-Za-z0-9._-]+)`?", re.IGNORECASE)
FORMATS = ("AVRO", "JSON", "CSV", "XML", "PROTOBUF", "INT", "LONG", "STRING", "BYTES")
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
class FakeLenses(FakeServer):
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
    topic_metadata: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(environment, topic) -> its metadata as GET answers it."""
    tiers: dict[str, str] = field(default_factory=dict)
    """Environment -> its tier, where not development."""
    agent_keys: dict[str, str] = field(default_factory=dict)
    """Environment -> the agent key its create answer gave."""
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _sessions: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.serve(_Handler)

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

    def declare(self, topic: str, key_type: str, value_type: str, env: str = "dev",
                value_schema: str | None = None) -> None:
        """A topic's formats set in the Lenses UI."""
        with self._lock:
            entry = {"topicName": topic, "keyType": key_type, "valueType": value_type}
            if value_schema is not None:
                entry["valueSchema"] = value_schema
            self.topic_metadata[(env, topic)] = entry

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
        metadata = _METADATA.match(path)
        if metadata:
            if metadata["env"] not in self.environments:
                return 404, {"title": f"environment {metadata['env']} not found"}, {}
            with self._lock:
                return self._metadata(method, path, metadata["env"], metadata["topic"], body)
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
        known = {env: _environment(env, self.tiers.get(env, "development"))
                 for env in self.environments}
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
            created = {**_environment(name, body["tier"]),
                       "agent_key": f"agent_key_{secrets.token_hex(16)}"}
            self.environments = (*self.environments, name)
            self.tiers[name] = body["tier"]
            self.agent_keys[name] = created["agent_key"]
            return 200, created, {}
        if method == "DELETE" and name:
            if name not in known:
                return 404, {"title": f"environment {name} not found"}, {}
            self.environments = tuple(e for e in self.environments if e != name)
            return 204, None, {}
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
            unknown = [t for t in _FROM.findall(body["sql"])
                       if (env, t) not in self.topic_metadata]
            if unknown:
                return 400, {"error": f"The input topic {unknown[0]} has no known key and value "
                             "format: set its schema before creating the processor",
                             "errorType": "ValidationError"}, {}
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


    def _metadata(self, method: str, path: str, env: str, topic: str | None,
                  body: Any) -> tuple[int, Any, dict[str, str]]:
        versioned = "/proxy/api/v1/" in path
        if (method, versioned, topic) == ("POST", True, None):
            problems = [(k, "is required") for k in ("topicName", "keyType", "valueType")
                        if not isinstance((body or {}).get(k), str) or not body[k]]
            problems += [(k, f"must be one of {', '.join(FORMATS)}")
                         for k in ("keyType", "valueType")
                         if isinstance((body or {}).get(k), str) and body[k] not in FORMATS]
            if problems:
                return 400, {"error": "The request input was invalid",
                             "fields": [{"field": f, "error": e} for f, e in problems]}, {}
            self.topic_metadata[(env, body["topicName"])] = dict(body)
            return 200, None, {}
        if (method, versioned, topic) == ("GET", False, None):
            return 200, [m for (e, _), m in self.topic_metadata.items() if e == env], {}
        if method in ("GET", "DELETE") and not versioned and topic:
            found = self.topic_metadata.get((env, topic))
            if found is None:
                return 404, {"error": f"No metadata for topic {topic}"}, {}
            if method == "GET":
                return 200, found, {}
            del self.topic_metadata[(env, topic)]
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


def _environment(name: str, tier: str = "development") -> dict[str, Any]:
    return {"name": name, "display_name": name, "lrn": f"lrn:environment/{name}",
            "id": f"env-{name}", "created_at": CREATED_AT, "tier": tier,
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
    """A fresh HQ test server per test, with the `dev` environment, whose device_data formats
    are already declared."""
    fake = FakeLenses()
    fake.declare("device_data", "STRING", "JSON")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
