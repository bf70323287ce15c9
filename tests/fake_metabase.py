"""A local test server for the part of Metabase's REST API the Metabase provider uses, answering
only in the shapes the public sources give, with knobs for a slow start, a Snowflake it cannot
reach, and changes made in the Metabase UI.

Sources (metabase/metabase at the commits named; prose in /work/shared/reference/api-facts.md A):
- Readiness: the server's top-level routes: GET /api/health answers 200 {"status": "ok"} once
  initialized, else 503 {"status": "initializing", "progress": p}, and every other /api/ route
  503 "Metabase is still initializing. Please sit tight..."; a 2024 log fixture also shows
  302 {"status": "redirect", "progress": p}.
- Setup: src/metabase/setup/settings.clj @ 01a5cea4 (public settings `setup-token`, cleared once
  used, and `has-user-setup`); src/metabase/session/api.clj @ 00309a49 (GET
  /api/session/properties, no session needed); src/metabase/setup/api.clj @ 0ac1cd55 (POST
  /api/setup {token, user {first_name, last_name, email, password}, prefs {site_name (required,
  non-blank), site_locale?}}; the map is open, so allow_tracking is accepted and ignored; the
  answer {"id": <session>}; 403 "The /api/setup route can only be used to create the first
  user, however a user currently exists."; "Token does not match the setup token.").
- Passwords: docs/people-and-groups/changing-password-complexity.md @ 1b0fc1b9 (default
  complexity `normal`: at least 6 characters, one of them a digit); failures read "password is
  too common" (docs/latest/api/setup).
- Login: src/metabase/session/api.clj @ 00309a49 and docs/api/session.md: POST /api/session
  {username, password} -> {"id": <session>}; a wrong password 401 with errors.password "did not
  match stored password"; DELETE /api/session 204. Sessions go in the x-metabase-session header
  (the session middleware's `metabase-session-header`); without one every other route answers
  401 "Unauthenticated" (src/metabase/api/response.clj @ dd5f3322, response-unauthentic).
- Databases: src/metabase/warehouses_rest/api.clj @ 004f0ce6: POST /api/database, a closed map
  {name, engine, details, is_full_sync, is_on_demand, schedules, auto_run_queries, cache_ttl,
  connection_source, provider_name, is_stub}; the connection is tested first and on failure
  nothing is saved and 400 comes back with the error map ({message, errors}) without `valid`
  (older src/metabase/api/database.clj versions sent the map with "valid": false:
  `legacy_valid_flag`); PUT /api/database/:id, a closed map, merges the details into the stored
  ones, keeps a stored secret where "**MetabasePass**" is sent (upsert-sensitive-fields), tests
  the connection again when the details changed and answers 400 with its error; DELETE 404 for
  an unknown id, else 204.
- Snowflake details: modules/drivers/snowflake/resources/metabase-plugin.yaml @ 05234ca0
  (account, warehouse and db required; user; password; private-key a secret of kind pem-cert;
  schema-filters; role) with the wire names schema-filters-type/-patterns; the secret's
  sub-keys private-key-value / private-key-options ("uploaded") and the redaction on GET to
  "**MetabasePass**", the value then kept apart under private-key-id
  (src/metabase/secrets/models/secret.clj); "RSA private key (PEM)", Uploaded
  (https://www.metabase.com/docs/latest/databases/connections/snowflake).
- Questions: src/metabase/queries_rest/api/card.clj @ 00f45661: POST /api/card, a closed map
  (CardCreateSchema: name, display and visualization_settings required, dataset_query, a
  description non-blank when given, ...); PUT /api/card/:id, a closed map (CardUpdateSchema,
  `archived` among it: the Trash); DELETE hard-deletes, 204. From 0.57 GET answers dataset_query
  in MBQL 5 {"lib/type": "mbql/query", "database", "stages": [{"lib/type":
  "mbql.stage/native", "native": sql}]}, the legacy form with ?legacy-mbql=true
  (docs/developers-guide/api-changelog.md @ 03844513, "Metabase 0.57.0").
- Dashboards: src/metabase/dashboards_rest/api.clj @ 0085ec32: POST /api/dashboard, a closed map
  {name, description, parameters, cache_ttl, collection_id, collection_position}, answered with
  the hydrated dashboard; PUT /api/dashboard/:id, a closed map (DashUpdates) whose `dashcards`
  is the whole set: each a closed map (UpdatedDashboardCard: id, size_x > 0, size_y > 0,
  row >= 0, col >= 0 required; card_id, action_id, dashboard_tab_id, parameter_mappings,
  visualization_settings, inline_parameters, series optional), ids unique, a negative id
  creates, a row left out is deleted; GET with dashcards hydrated with `card` and `series`, and
  `tabs`; DELETE hard-deletes, 204.

Assumptions (no source read confirms them; the client copes either way where it can):
- Validation failures answer 400 {"errors": {<field>: <message>}} (nested for nested maps), an
  unknown key of a closed map "disallowed key"; a wrong setup token answers 403, with the
  message as a text body like the 403 for a second setup; 404s answer "Not found.", an unknown
  route "API endpoint does not exist."
- What the fake calls a connection that works: account, user, warehouse and db non-blank and
  one credential, a password or a PEM private key in private-key-value ("uploaded"); its
  refusal messages are made up (a real one is the JDBC driver's text). `echo_secrets` makes them
  (and a refused login) repeat what was sent, as careless servers do, so that masking is
  tested for real: Metabase itself is not known to echo secrets.
- A database's deletion removes the questions built on it, and a question's removal the
  dashboard rows showing it (foreign keys in Metabase's application database). Archived
  questions and dashboards are still answered by GET, with "archived": true.
- A positive dashcard id that is not on the dashboard is refused with 400.
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
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fake_server import FakeServer

__all__ = ["FakeMetabase", "Recorded", "metabase_fixture"]

PROTECTED = "**MetabasePass**"
INITIALIZING = "Metabase is still initializing. Please sit tight..."
SECOND_SETUP = ("The /api/setup route can only be used to create the first user, however a "
                "user currently exists.")
ENGINES = ("snowflake", "postgres", "h2")
SNOWFLAKE_REQUIRED = ("account", "user", "warehouse", "db")
EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
PEM_KEY = re.compile(r"-----BEGIN (?:RSA |ENCRYPTED )?PRIVATE KEY-----\s+[A-Za-z0-9+/=\s]+"
                     r"-----END (?:RSA |ENCRYPTED )?PRIVATE KEY-----")
_ROUTE = re.compile(r"^/api/(?P<kind>database|card|dashboard)(?:/(?P<id>[^/]+))?/?$")

DATABASE_CREATE = ("name", "engine", "details", "is_full_sync", "is_on_demand", "schedules",
                   "auto_run_queries", "cache_ttl", "connection_source", "provider_name",
                   "is_stub")
DATABASE_UPDATE = ("name", "engine", "refingerprint", "details", "write_data_details",
                   "schedules", "is_full_sync", "is_on_demand", "description", "caveats",
                   "points_of_interest", "auto_run_queries", "cache_ttl", "provider_name",
                   "settings", "is_stub")
CARD_CREATE = ("name", "type", "dataset_query", "entity_id", "parameters", "parameter_mappings",
               "description", "display", "visualization_settings", "collection_id",
               "collection_position", "result_metadata", "cache_ttl", "dashboard_id",
               "dashboard_tab_id", "size", "source_card_id")
CARD_UPDATE = ("name", "parameters", "parameter_mappings", "dataset_query", "type", "display",
               "description", "visualization_settings", "archived", "enable_embedding",
               "embedding_type", "embedding_params", "collection_id", "collection_position",
               "result_metadata", "cache_ttl", "collection_preview", "dashboard_id",
               "dashboard_tab_id")
DASHBOARD_CREATE = ("name", "description", "parameters", "cache_ttl", "collection_id",
                    "collection_position")
DASHBOARD_UPDATE = ("name", "description", "caveats", "points_of_interest",
                    "show_in_getting_started", "enable_embedding", "embedding_type",
                    "embedding_params", "parameters", "position", "width", "archived",
                    "auto_apply_filters", "collection_id", "collection_position", "cache_ttl",
                    "dashcards", "tabs")
DASHCARD = ("id", "size_x", "size_y", "row", "col", "card_id", "action_id", "dashboard_tab_id",
            "parameter_mappings", "visualization_settings", "inline_parameters", "series")

Reply = tuple[int, Any]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


def _errors(**fields: Any) -> Reply:
    return 400, {"errors": fields}


def _closed(body: Any, allowed: tuple[str, ...]) -> Reply | None:
    if not isinstance(body, dict):
        return _errors(body="value must be a map.")
    extra = sorted(set(body) - set(allowed))
    return _errors(**dict.fromkeys(extra, "disallowed key")) if extra else None


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


@dataclass
class FakeMetabase(FakeServer):
    startup_checks: int = 0
    """The first N calls to /api/health answer `startup_status`; until then every other /api/
    route answers 503 too."""
    startup_status: int = 503
    """503 (initializing) or 302 (the redirect seen in Metabase's log fixture)."""
    accept_connections: bool = True
    """False: every connection test fails, as with a Snowflake that refuses the key."""
    echo_secrets: bool = False
    """Refusals repeat the password or key they were sent (not Metabase's own behaviour)."""
    legacy_valid_flag: bool = False
    """A refused database carries "valid": false, as versions before warehouses_rest did."""
    mbql5: bool = True
    """GET /api/card answers MBQL 5 (0.57 and later) unless ?legacy-mbql=true."""
    delay: float = 0.0
    """Seconds every call except /api/health waits before answering."""
    setup_token: str | None = field(default_factory=lambda: str(secrets.token_hex(16)))
    site_name: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    """email -> the user with its password."""
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    """id -> the database as stored: secrets under private-key-id, not in the details."""
    secret_values: dict[int, str] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    """id -> the question, its dataset_query kept in the legacy form."""
    dashboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    health_checks: int = 0
    url: str = ""
    sessions: dict[str, str] = field(default_factory=dict)
    """session id -> email."""
    _ids: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.serve(_Handler)

    # --- what the tests look at, and changes made in the Metabase UI -------------------------

    @property
    def has_user_setup(self) -> bool:
        return bool(self.users)

    def add_admin(self, email: str, password: str) -> None:
        """A Metabase someone set up by hand."""
        with self._lock:
            self.users[email] = {"email": email, "password": password, "first_name": "Someone",
                                 "last_name": "Else", "is_superuser": True}
            self.setup_token = None

    def effective_details(self, database_id: int) -> dict[str, Any]:
        """The details the database connects with, its secret included."""
        with self._lock:
            return self._effective(self.databases[database_id]["details"])

    def card_named(self, name: str) -> dict[str, Any]:
        (card,) = [c for c in self.cards.values() if c["name"] == name]
        return card

    def calls(self, method: str, prefix: str = "/api/") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # --- the API --------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self._lock:
            self.requests.append(Recorded(method, raw_path, body, headers))
            if path == "/api/health" and method == "GET":
                self.health_checks += 1
                if self.health_checks <= self.startup_checks:
                    status = "redirect" if self.startup_status == 302 else "initializing"
                    progress = round(self.health_checks / (self.startup_checks + 1), 2)
                    return self.startup_status, {"status": status, "progress": progress}
                return 200, {"status": "ok"}
            if self.health_checks < self.startup_checks:
                return 503, INITIALIZING
        if self.delay:
            self._stopping.wait(self.delay)
        with self._lock:
            public = self._public(method, path, body)
            if public is not None:
                return public
            session = next((v for k, v in headers.items() if k.lower() == "x-metabase-session"),
                           "")
            if session not in self.sessions:
                return 401, "Unauthenticated"
            if (method, path) == ("DELETE", "/api/session"):
                del self.sessions[session]
                return 204, None
            route = _ROUTE.match(path)
            if not route:
                return 404, "API endpoint does not exist."
            kind, raw_id = route["kind"], route["id"]
            if raw_id is None:
                if method != "POST":
                    return 405, "Method not allowed."
                return {"database": self._create_database, "card": self._create_card,
                        "dashboard": self._create_dashboard}[kind](body)
            if not raw_id.isdigit() or int(raw_id) <= 0:
                return _errors(id="value must be an integer greater than zero.")
            return self._one(kind, method, int(raw_id), body, query)

    def _public(self, method: str, path: str, body: Any) -> Reply | None:
        """The routes that need no session."""
        if (method, path) == ("GET", "/api/session/properties"):
            return 200, {"setup-token": self.setup_token, "has-user-setup": self.has_user_setup,
                         "site-name": self.site_name or "Metabase",
                         "version": {"tag": "v0.64.2.2"}}
        if (method, path) == ("POST", "/api/setup"):
            return self._setup(body)
        if (method, path) == ("POST", "/api/session"):
            return self._login(body)
        return None

    def _setup(self, body: Any) -> Reply:
        if self.has_user_setup:
            return 403, SECOND_SETUP
        body = body if isinstance(body, dict) else {}
        if body.get("token") != self.setup_token:
            return 403, "Token does not match the setup token."
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        prefs = body.get("prefs") if isinstance(body.get("prefs"), dict) else {}
        problems: dict[str, Any] = {}
        if not isinstance(user.get("email"), str) or not EMAIL.match(user["email"]):
            problems.setdefault("user", {})["email"] = "value must be a valid email address."
        if not _valid_password(user.get("password")):
            shown = f": {user.get('password')}" if self.echo_secrets else ""
            problems.setdefault("user", {})["password"] = f"password is too common.{shown}"
        if _blank(prefs.get("site_name")):
            problems["prefs"] = {"site_name": "value must be a non-blank string."}
        if problems:
            return 400, {"errors": problems}
        self.users[user["email"]] = {**user, "is_superuser": True}
        self.site_name = prefs["site_name"]
        self.setup_token = None  # cleared once used
        return 200, {"id": self._session_for(user["email"])}

    def _login(self, body: Any) -> Reply:
        body = body if isinstance(body, dict) else {}
        username, password = body.get("username"), body.get("password")
        if _blank(username) or _blank(password):
            return _errors(username="value must be a non-blank string.",
                           password="value must be a non-blank string.")
        user = self.users.get(username)
        if user is None or user["password"] != password:
            shown = f" ({username}:{password})" if self.echo_secrets else ""
            return 401, {"errors": {"password": f"did not match stored password{shown}"}}
        return 200, {"id": self._session_for(username)}

    def _session_for(self, email: str) -> str:
        session = str(secrets.token_hex(16))
        self.sessions[session] = email
        return session

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _one(self, kind: str, method: str, item_id: int, body: Any,
             query: dict[str, list[str]]) -> Reply:
        store = {"database": self.databases, "card": self.cards,
                 "dashboard": self.dashboards}[kind]
        if item_id not in store:
            return 404, "Not found."
        if method == "GET":
            legacy = query.get("legacy-mbql") == ["true"]
            if kind == "database":
                return 200, self._public_database(item_id)
            if kind == "card":
                return 200, self._public_card(item_id, legacy)
            return 200, self._public_dashboard(item_id, legacy)
        if method == "PUT":
            return {"database": self._update_database, "card": self._update_card,
                    "dashboard": self._update_dashboard}[kind](item_id, body)
        if method == "DELETE":
            if kind == "database":
                for card_id in [c for c, card in self.cards.items()
                                if card["dataset_query"].get("database") == item_id]:
                    self._drop_card(card_id)
                del self.databases[item_id]
            elif kind == "card":
                self._drop_card(item_id)
            else:
                del self.dashboards[item_id]
            return 204, None
        return 405, "Method not allowed."

    # --- databases --------------------------------------------------------------------------------

    def _connection_problem(self, engine: str, details: dict[str, Any]) -> dict[str, Any] | None:
        """What testing the connection says: None when it connects."""
        if engine != "snowflake":
            return None if self.accept_connections else {"message": "Connection refused."}
        missing = [key for key in SNOWFLAKE_REQUIRED if _blank(details.get(key))]
        if missing:
            return {"message": f"Missing required connection properties: {', '.join(missing)}",
                    "errors": dict.fromkeys(missing, "value is required")}
        key, password = details.get("private-key-value"), details.get("password")
        if key is None and _blank(password):
            return {"message": "Snowflake needs a password or an RSA private key (PEM)",
                    "errors": {"private-key": "value is required"}}
        uploaded = details.get("private-key-options", "uploaded") == "uploaded"
        if key is not None and not (uploaded and isinstance(key, str) and PEM_KEY.search(key)):
            shown = f": {key}" if self.echo_secrets else ""
            return {"message": f"Private key provided is invalid or not supported{shown}",
                    "errors": {"private-key": "invalid PEM private key"}}
        if not self.accept_connections:
            shown = f" (key {key})" if self.echo_secrets and key else ""
            return {"message": f"JWT token is invalid.{shown}"}
        return None

    def _refused(self, problem: dict[str, Any]) -> Reply:
        return 400, ({**problem, "valid": False} if self.legacy_valid_flag else problem)

    def _effective(self, stored: dict[str, Any]) -> dict[str, Any]:
        details = {k: v for k, v in stored.items() if k != "private-key-id"}
        if "private-key-id" in stored:
            details["private-key-value"] = self.secret_values[stored["private-key-id"]]
        return details

    def _store_details(self, details: dict[str, Any], secret_id: int | None) -> dict[str, Any]:
        stored = dict(details)
        value = stored.pop("private-key-value", None)
        if value is not None:
            secret_id = secret_id or self._next_id("secret")
            self.secret_values[secret_id] = value
            stored["private-key-id"] = secret_id
            stored.setdefault("private-key-options", "uploaded")
        return stored

    def _create_database(self, body: Any) -> Reply:
        refused = _closed(body, DATABASE_CREATE)
        if refused:
            return refused
        if _blank(body.get("name")):
            return _errors(name="value must be a non-blank string.")
        if body.get("engine") not in ENGINES:
            return _errors(engine="value must be a valid database engine.")
        if not isinstance(body.get("details"), dict):
            return _errors(details="value must be a map.")
        problem = self._connection_problem(body["engine"], body["details"])
        if problem:
            return self._refused(problem)
        database_id = self._next_id("database")
        self.databases[database_id] = {
            "id": database_id, "name": body["name"], "engine": body["engine"],
            "details": self._store_details(body["details"], None),
            "is_full_sync": body.get("is_full_sync", True),
            "is_on_demand": body.get("is_on_demand", False)}
        return 200, self._public_database(database_id)

    def _public_database(self, database_id: int) -> dict[str, Any]:
        """As GET shows it: secrets replaced by "**MetabasePass**"."""
        database = self.databases[database_id]
        details = {k: v for k, v in database["details"].items()}
        if "password" in details:
            details["password"] = PROTECTED
        if "private-key-id" in details and details.get("private-key-options") == "uploaded":
            details["private-key-value"] = PROTECTED
        return {**database, "details": details}

    def _update_database(self, database_id: int, body: Any) -> Reply:
        refused = _closed(body, DATABASE_UPDATE)
        if refused:
            return refused
        database = self.databases[database_id]
        if "name" in body and _blank(body["name"]):
            return _errors(name="value must be a non-blank string.")
        engine = body.get("engine") or database["engine"]
        if engine not in ENGINES:
            return _errors(engine="value must be a valid database engine.")
        current = self._effective(database["details"])
        if isinstance(body.get("details"), dict):
            incoming = {k: current.get(k) if v == PROTECTED else v
                        for k, v in body["details"].items()}
            merged = {**current, **incoming}
            if merged != current or engine != database["engine"]:
                problem = self._connection_problem(engine, merged)
                if problem:
                    return 400, problem
            database["details"] = self._store_details(
                merged, database["details"].get("private-key-id"))
        for key in ("name", "description", "is_full_sync", "is_on_demand", "auto_run_queries"):
            if body.get(key) is not None:
                database[key] = body[key]
        database["engine"] = engine
        return 200, self._public_database(database_id)

    # --- questions --------------------------------------------------------------------------------

    def _card_problems(self, body: dict[str, Any], creating: bool) -> Reply | None:
        refused = _closed(body, CARD_CREATE if creating else CARD_UPDATE)
        if refused:
            return refused
        problems = {}
        for key in ("name", "display"):
            if (creating or key in body) and _blank(body.get(key)):
                problems[key] = "value must be a non-blank string."
        for key in ("visualization_settings", "dataset_query"):
            if (creating or body.get(key) is not None) and not isinstance(body.get(key), dict):
                problems[key] = "value must be a map."
        if body.get("description") is not None and creating and _blank(body["description"]):
            problems["description"] = "value must be a non-blank string."
        if body.get("type") not in (None, "question", "metric", "model"):
            problems["type"] = "value must be one of: question, metric, model."
        if isinstance(body.get("dataset_query"), dict) and _legacy(body["dataset_query"]) is None:
            problems["dataset_query"] = "value must be a valid query."
        return _errors(**problems) if problems else None

    def _create_card(self, body: Any) -> Reply:
        refused = self._card_problems(body if isinstance(body, dict) else {}, creating=True)
        if refused:
            return refused
        card_id = self._next_id("card")
        self.cards[card_id] = {
            "id": card_id, "name": body["name"], "type": body.get("type") or "question",
            "display": body["display"], "description": body.get("description"),
            "visualization_settings": body["visualization_settings"],
            "dataset_query": _legacy(body["dataset_query"]), "archived": False,
            "collection_id": body.get("collection_id"), "query_type": "native"}
        return 200, self._public_card(card_id, legacy=False)

    def _public_card(self, card_id: int, legacy: bool) -> dict[str, Any]:
        card = dict(self.cards[card_id])
        query = card["dataset_query"]
        card["database_id"] = query.get("database")
        if self.mbql5 and not legacy:
            card["dataset_query"] = {
                "lib/type": "mbql/query", "database": query.get("database"),
                "stages": [{"lib/type": "mbql.stage/native",
                            "native": query["native"]["query"], "template-tags": {}}]}
        return card

    def _update_card(self, card_id: int, body: Any) -> Reply:
        refused = self._card_problems(body if isinstance(body, dict) else {}, creating=False)
        if refused:
            return refused
        card = self.cards[card_id]
        for key, value in body.items():
            if value is not None:
                card[key] = _legacy(value) if key == "dataset_query" else value
        return 200, self._public_card(card_id, legacy=False)

    def _drop_card(self, card_id: int) -> None:
        del self.cards[card_id]
        for dashboard in self.dashboards.values():
            dashboard["dashcards"] = [d for d in dashboard["dashcards"]
                                      if d.get("card_id") != card_id]

    # --- dashboards -------------------------------------------------------------------------------

    def _create_dashboard(self, body: Any) -> Reply:
        refused = _closed(body, DASHBOARD_CREATE)
        if refused:
            return refused
        if _blank(body.get("name")):
            return _errors(name="value must be a non-blank string.")
        dashboard_id = self._next_id("dashboard")
        self.dashboards[dashboard_id] = {
            "id": dashboard_id, "name": body["name"], "description": body.get("description"),
            "collection_id": body.get("collection_id"), "parameters": [], "archived": False,
            "dashcards": [], "tabs": [], "width": "fixed"}
        return 200, self._public_dashboard(dashboard_id, legacy=False)

    def _public_dashboard(self, dashboard_id: int, legacy: bool) -> dict[str, Any]:
        dashboard = dict(self.dashboards[dashboard_id])
        dashboard["dashcards"] = [
            {**row, "dashboard_id": dashboard_id, "series": [], "parameter_mappings": [],
             "visualization_settings": row.get("visualization_settings") or {},
             "dashboard_tab_id": None,
             "card": self._public_card(row["card_id"], legacy)
             if row.get("card_id") in self.cards else None}
            for row in dashboard["dashcards"]]
        return dashboard

    def _update_dashboard(self, dashboard_id: int, body: Any) -> Reply:
        refused = _closed(body, DASHBOARD_UPDATE)
        if refused:
            return refused
        dashboard = self.dashboards[dashboard_id]
        if "name" in body and _blank(body["name"]):
            return _errors(name="value must be a non-blank string.")
        if "dashcards" in body:
            rows = body["dashcards"]
            if not isinstance(rows, list):
                return _errors(dashcards="value must be a sequence.")
            problem = _dashcard_problems(rows, {d["id"] for d in dashboard["dashcards"]})
            if problem:
                return problem
            kept = {d["id"]: d for d in dashboard["dashcards"]}
            new_rows = []
            for row in rows:
                row_id = row["id"] if row["id"] > 0 else self._next_id("dashcard")
                new_rows.append({**kept.get(row_id, {}), **row, "id": row_id})
            dashboard["dashcards"] = new_rows  # every row left out is deleted
        for key, value in body.items():
            if key not in ("dashcards", "tabs"):
                dashboard[key] = value
        return 200, self._public_dashboard(dashboard_id, legacy=False)


def _dashcard_problems(rows: list[Any], on_dashboard: set[int]) -> Reply | None:
    ids = []
    for index, row in enumerate(rows):
        refused = _closed(row, DASHCARD)
        if refused:
            return 400, {"errors": {"dashcards": {str(index): refused[1]["errors"]}}}
        problems = {}
        if not isinstance(row.get("id"), int):
            problems["id"] = "value must be an integer."
        for key, low in (("size_x", 1), ("size_y", 1), ("row", 0), ("col", 0)):
            if not isinstance(row.get(key), int) or row[key] < low:
                problems[key] = f"value must be an integer of at least {low}."
        if problems:
            return 400, {"errors": {"dashcards": {str(index): problems}}}
        if row["id"] > 0 and row["id"] not in on_dashboard:
            return 400, {"errors": {"dashcards": {str(index): {
                "id": f"dashcard {row['id']} is not on this dashboard"}}}}
        ids.append(row["id"])
    if len(ids) != len(set(ids)):
        return _errors(dashcards="dashcard ids must be unique.")
    return None


def _legacy(query: Any) -> dict[str, Any] | None:
    """A native query in the legacy form, from either form the API accepts."""
    if not isinstance(query, dict):
        return None
    if query.get("type") == "native" and isinstance(query.get("native"), dict) and isinstance(
            query["native"].get("query"), str):
        return {"database": query.get("database"), "type": "native",
                "native": {"query": query["native"]["query"]}}
    stages = query.get("stages")
    if query.get("lib/type") == "mbql/query" and isinstance(stages, list) and stages and (
            isinstance(stages[0], dict) and isinstance(stages[0].get("native"), str)):
        return {"database": query.get("database"), "type": "native",
                "native": {"query": stages[0]["native"]}}
    return None


def _valid_password(password: Any) -> bool:
    """Metabase's default complexity, `normal`: at least 6 characters, one of them a digit."""
    return isinstance(password, str) and len(password) >= 6 and any(c.isdigit() for c in password)


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        fake: FakeMetabase = self.server.fake  # type: ignore[attr-defined]
        status, reply = fake.handle(self.command, self.path, body, dict(self.headers))
        if reply is None:
            data, kind = b"", ""
        elif isinstance(reply, str):
            data, kind = reply.encode(), "text/plain"
        else:
            data, kind = json.dumps(reply).encode(), "application/json"
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(name="metabase")
def metabase_fixture() -> Iterator[FakeMetabase]:
    """A fresh Metabase test server per test: up, with no user yet."""
    fake = FakeMetabase()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
