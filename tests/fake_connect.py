"""A local HTTP server that answers like the Kafka Connect REST API, for the connectors
provider's tests: connectors in memory, the validate endpoint with the plugins' required keys,
and knobs for rebalances (409), slowness and out-of-band changes."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from components.render.connectors import MQTT_SOURCE_CLASS, SNOWFLAKE_SINK_CLASS

REQUIRED = {
    MQTT_SOURCE_CLASS: ("connect.mqtt.hosts", "connect.mqtt.kcql", "connect.mqtt.client.id"),
    SNOWFLAKE_SINK_CLASS: ("snowflake.url.name", "snowflake.user.name", "snowflake.private.key",
                           "snowflake.database.name", "snowflake.schema.name", "topics"),
}


def _errors(config: dict[str, str]) -> dict[str, list[str]]:
    """What the real plugins report for the mistakes the tests make."""
    errors = {key: [f"Missing required configuration \"{key}\" which has no default value."]
              for key in REQUIRED[config["connector.class"]] if not config.get(key)}
    key = config.get("snowflake.private.key")
    if key is not None:
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error:
            # Kafka's ConfigException style, which echoes the value.
            errors.setdefault("snowflake.private.key", []).append(
                f"Invalid value {key} for configuration snowflake.private.key: not base64")
    flush = config.get("buffer.flush.time")
    if flush is not None and int(flush) < 10:
        errors.setdefault("buffer.flush.time", []).append(
            f"buffer.flush.time is {flush}, it should be greater than 10")
    return errors


@dataclass
class FakeConnect:
    connectors: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    conflicts: int = 0
    """The next this many writes answer 409, as during a rebalance."""
    delay: float = 0.0
    """Seconds every answer waits."""
    url: str = ""

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if self.delay:
            time.sleep(self.delay)
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method != "GET" and self.conflicts:
            self.conflicts -= 1
            return 409, {"error_code": 409, "message": "Cannot complete request momentarily "
                         "due to stale configuration (typically caused by a concurrent "
                         "config change)"}
        if parts[:1] == ["connector-plugins"] and parts[2:] == ["config", "validate"]:
            if body.get("connector.class") != parts[1] or parts[1] not in REQUIRED:
                return 400, {"error_code": 400, "message": "Connector class mismatch"}
            errors = _errors(body)
            return 200, {
                "name": parts[1],
                "error_count": sum(len(e) for e in errors.values()),
                "groups": [],
                "configs": [{"definition": {"name": k}, "value": {"name": k, "value": v,
                                                                  "errors": errors.get(k, [])}}
                            for k, v in {**body, **dict.fromkeys(errors, None)}.items()],
            }
        if parts[:1] != ["connectors"] or len(parts) < 2:
            return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}
        name = parts[1]
        missing = (404, {"error_code": 404, "message": f"Connector {name} not found"})
        if parts[2:] == ["config"] and method == "GET":
            return (200, self.connectors[name]) if name in self.connectors else missing
        if parts[2:] == ["config"] and method == "PUT":
            if body.get("name", name) != name:
                return 400, {"error_code": 400, "message": "Connector name configuration "
                             f"({body['name']}) doesn't match connector name in the URL ({name})"}
            created = name not in self.connectors
            self.connectors[name] = {**body, "name": name}
            return (201 if created else 200), {"name": name, "config": self.connectors[name],
                                               "tasks": [], "type": "source"}
        if parts[2:] == [] and method == "DELETE":
            return (204, None) if self.connectors.pop(name, None) is not None else missing
        return 405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"}


def serve() -> tuple[FakeConnect, ThreadingHTTPServer]:
    fake = FakeConnect()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.handle(self.command, self.path, body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = do_POST = _reply

        def log_message(self, *args) -> None:  # quiet test output
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                     daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return fake, server
