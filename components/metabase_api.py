"""A client for the Metabase REST API calls the Metabase provider makes: readiness, first-run
setup, a session login, databases, questions (cards) and dashboards. Every secret it is given,
and the session it gets, is masked in every error it raises."""

from __future__ import annotations

import json
import time
from typing import Any

from components.http_api import ApiError, JsonApi, mask

__all__ = [
    "NOT_READY",
    "PROTECTED_PASSWORD",
    "SESSION_HEADER",
    "MetabaseClient",
    "MetabaseNotReady",
    "native_query",
    "native_sql",
    "secret_forms",
]

SESSION_HEADER = "X-Metabase-Session"
"""The session header (metabase/metabase session middleware, `metabase-session-header`)."""
PROTECTED_PASSWORD = "**MetabasePass**"  # noqa: S105 - Metabase's placeholder, not a secret
"""What GET /api/database/:id shows instead of a secret detail; sent back on PUT, it keeps the
stored value (metabase/metabase src/metabase/secrets/models/secret.clj, protected-password)."""
NOT_READY = (302, 503)
"""/api/health while Metabase initializes: 503 {"status": "initializing", "progress": p}; a
302 {"status": "redirect"} also shows in Metabase's own log fixtures."""


class MetabaseNotReady(ApiError):
    """Metabase did not answer /api/health with {"status": "ok"} in the time allowed."""


def secret_forms(value: str) -> tuple[str, ...]:
    """A secret as a server may echo it: whole, JSON-escaped (a PEM's newlines as \\n), and
    each line of a multi-line secret's body, so that a partial echo is masked too."""
    if not value:
        return ()
    forms = {value, json.dumps(value)[1:-1]}
    forms |= {line.strip() for line in value.splitlines()
              if len(line.strip()) >= 16 and not line.strip().startswith("-----")}
    return tuple(forms)


def native_query(database_id: int, sql: str) -> dict[str, Any]:
    """A native question's dataset_query in the legacy form POST and PUT /api/card accept (the
    server normalizes it; metabase/metabase src/metabase/queries_rest/api/card.clj)."""
    return {"database": database_id, "type": "native", "native": {"query": sql}}


def native_sql(dataset_query: Any) -> str | None:
    """The SQL of a native question as GET /api/card/:id answers it: the legacy form
    {"type": "native", "native": {"query": ...}}, or, from Metabase 0.57, MBQL 5
    {"lib/type": "mbql/query", "stages": [{"lib/type": "mbql.stage/native", "native": ...}]}
    (metabase/metabase docs/developers-guide/api-changelog.md, "Metabase 0.57.0"). None for
    anything else (a question rebuilt in the query builder)."""
    if not isinstance(dataset_query, dict):
        return None
    if dataset_query.get("type") == "native":
        native = dataset_query.get("native")
        query = native.get("query") if isinstance(native, dict) else None
        return query if isinstance(query, str) else None
    stages = dataset_query.get("stages")
    if dataset_query.get("lib/type") == "mbql/query" and isinstance(stages, list) and stages:
        stage = stages[0]
        if isinstance(stage, dict) and stage.get("lib/type") == "mbql.stage/native":
            native = stage.get("native")
            return native if isinstance(native, str) else None
    return None


class MetabaseClient:
    """Calls to one Metabase. The provider makes one client per operation: it waits for
    Metabase to be ready, sets it up or logs in, and logs out when the operation is done."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def mask(self, *secrets: str) -> None:
        """Mask these values (in every form secret_forms gives) in every error from now on."""
        forms = [form for secret in secrets for form in secret_forms(secret)]
        self.api.secrets = (*self.api.secrets, *forms)

    def _fail(self, message: str, status: int | None) -> ApiError:
        return ApiError(mask(message, self.api.secrets), status)

    # --- readiness ----------------------------------------------------------------------------

    def wait_until_ready(self, timeout: float, interval: float) -> None:
        """Poll /api/health until it answers {"status": "ok"}. A 503 or 302, a refused
        connection or a timed-out check means "not yet" and is asked again every `interval`
        seconds, for at most `timeout` seconds in all; any other answer is an error at once."""
        deadline = time.monotonic() + timeout
        checks = 0
        while True:
            checks += 1
            seen = self._health()
            if seen is None:
                return
            if time.monotonic() + interval > deadline:
                raise MetabaseNotReady(mask(
                    f"Metabase at {self.api.base_url} is not ready after {checks} health "
                    f"check(s) in {timeout:g} s; the last one: {seen}", self.api.secrets))
            time.sleep(interval)

    def _health(self) -> str | None:
        """None when ready; otherwise what the check saw."""
        try:
            response = self.api.request("GET", "/api/health", ok=(200, *NOT_READY))
        except ApiError as error:
            if error.status is None:  # not listening yet, or too slow to answer
                return str(error)
            raise
        assert response is not None  # missing_ok is off, so a 404 raised
        body = response.body
        if response.status == 200 and isinstance(body, dict) and body.get("status") == "ok":
            return None
        # A redirect urllib followed lands on a page, not on the health answer.
        return f"GET /api/health answered HTTP {response.status} {json.dumps(body)[:200]}"

    # --- setup and sessions -------------------------------------------------------------------

    def properties(self) -> dict[str, Any]:
        """The public settings (no session needed), among them `has-user-setup` and, until the
        first user exists, `setup-token` (src/metabase/setup/settings.clj)."""
        response = self.api.request("GET", "/api/session/properties", ok=(200,))
        body = response.body if response else None
        if not isinstance(body, dict):
            raise self._fail(f"GET {self.api.base_url}/api/session/properties: expected a JSON "
                             f"object of settings, got {type(body).__name__}", None)
        return body

    def setup(self, token: str, email: str, password: str, first_name: str, last_name: str,
              site_name: str) -> None:
        """Create the first (admin) user and keep the session the answer gives
        (src/metabase/setup/api.clj). `allow_tracking` is sent for the versions that read it;
        current ones ignore it."""
        self.mask(password)
        body = {"token": token,
                "user": {"first_name": first_name, "last_name": last_name, "email": email,
                         "password": password},
                "prefs": {"site_name": site_name, "allow_tracking": False}}
        try:
            response = self.api.request("POST", "/api/setup", body, ok=(200,))
        except ApiError as error:
            raise self._fail(
                f"Metabase at {self.api.base_url} refused its first-run setup with admin "
                f"{email!r} (HTTP {error.status}): {error}", error.status) from None
        self._use_session(response.body if response else None, "POST /api/setup")

    def login(self, email: str, password: str, hint: str = "") -> None:
        """Open a session as `email` (POST /api/session); `hint` says what to do when the
        login is refused."""
        self.mask(password)
        try:
            response = self.api.request("POST", "/api/session",
                                        {"username": email, "password": password}, ok=(200,))
        except ApiError as error:
            if error.status not in (400, 401, 403):
                raise
            raise self._fail(
                f"Metabase at {self.api.base_url} refused the login of {email!r} "
                f"(HTTP {error.status}). {hint or 'Check the admin email and password.'} "
                f"({error})", error.status) from None
        self._use_session(response.body if response else None, "POST /api/session")

    def logout(self) -> None:
        """End the session (DELETE /api/session), so none outlives the operation."""
        if SESSION_HEADER in self.api.headers:
            self.api.request("DELETE", "/api/session", ok=(200, 204), missing_ok=True)
            del self.api.headers[SESSION_HEADER]

    def _use_session(self, body: Any, call: str) -> None:
        session = body.get("id") if isinstance(body, dict) else None
        if not isinstance(session, str) or not session:
            raise self._fail(f"{call} at {self.api.base_url} answered without a session id "
                             "(expected {\"id\": \"<session>\"})", None)
        self.mask(session)
        self.api.headers[SESSION_HEADER] = session

    # --- databases ----------------------------------------------------------------------------

    def create_database(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add a database; Metabase tests the connection first and saves nothing when that
        fails (400 with the driver's message)."""
        try:
            response = self.api.request("POST", "/api/database", body, ok=(200,))
        except ApiError as error:
            if error.status != 400:
                raise
            raise self._fail(
                f"Metabase could not connect to database {body.get('name')!r} "
                f"({body.get('engine')}) and saved nothing: {error}", error.status) from None
        return self._object(response, "POST /api/database")

    def get_database(self, database_id: int) -> dict[str, Any] | None:
        return self._get(f"/api/database/{database_id}")

    def update_database(self, database_id: int, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.api.request("PUT", f"/api/database/{database_id}", body, ok=(200,))
        except ApiError as error:
            if error.status != 400:
                raise
            raise self._fail(
                f"Metabase refused the new settings of database {body.get('name')!r} "
                f"(id {database_id}), keeping the old ones: {error}", error.status) from None
        return self._object(response, f"PUT /api/database/{database_id}")

    def delete_database(self, database_id: int) -> None:
        """Remove it; one already gone counts as deleted."""
        self.api.request("DELETE", f"/api/database/{database_id}", missing_ok=True)

    # --- questions (cards) --------------------------------------------------------------------

    def create_card(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.request("POST", "/api/card", body, ok=(200,))
        return self._object(response, "POST /api/card")

    def get_card(self, card_id: int) -> dict[str, Any] | None:
        return self._get(f"/api/card/{card_id}")

    def update_card(self, card_id: int, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.request("PUT", f"/api/card/{card_id}", body, ok=(200,))
        return self._object(response, f"PUT /api/card/{card_id}")

    def delete_card(self, card_id: int) -> None:
        """Hard delete (not the Trash); one already gone counts as deleted."""
        self.api.request("DELETE", f"/api/card/{card_id}", missing_ok=True)

    # --- dashboards ---------------------------------------------------------------------------

    def create_dashboard(self, name: str, description: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        response = self.api.request("POST", "/api/dashboard", body, ok=(200,))
        return self._object(response, "POST /api/dashboard")

    def get_dashboard(self, dashboard_id: int) -> dict[str, Any] | None:
        return self._get(f"/api/dashboard/{dashboard_id}")

    def update_dashboard(self, dashboard_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """`dashcards`, when given, is the whole set: rows left out are removed, negative ids
        are new rows (src/metabase/dashboards_rest/api.clj)."""
        response = self.api.request("PUT", f"/api/dashboard/{dashboard_id}", body, ok=(200,))
        return self._object(response, f"PUT /api/dashboard/{dashboard_id}")

    def delete_dashboard(self, dashboard_id: int) -> None:
        """Hard delete (not the Trash); one already gone counts as deleted."""
        self.api.request("DELETE", f"/api/dashboard/{dashboard_id}", missing_ok=True)

    # --- helpers ------------------------------------------------------------------------------

    def _get(self, path: str) -> dict[str, Any] | None:
        response = self.api.request("GET", path, ok=(200,), missing_ok=True)
        if response is None:
            return None
        return self._object(response, f"GET {path}")

    def _object(self, response: Any, call: str) -> dict[str, Any]:
        body = response.body if response is not None else None
        if not isinstance(body, dict) or body.get("id") is None:
            raise self._fail(f"{call} at {self.api.base_url}: expected a JSON object with an "
                             f"id, got {type(body).__name__}", getattr(response, "status", None))
        return body
