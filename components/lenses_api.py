"""A client for the Lenses 6 HQ HTTP API: a session login, environments, and what lives in one
environment's agent, reached through HQ's proxy: SQL processors and topic metadata."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote

from components.http_api import ApiError, JsonApi, mask

__all__ = ["SESSION_COOKIE", "LensesClient", "agent_key_of", "declared_view"]

SESSION_COOKIE = "session_id"
"""The cookie HQ sets on login; any other cookie it sets is sent back as well."""

ENVIRONMENTS = "/api/v1/environments"
IN_PROC = {"mode": "IN_PROC"}
"""Processors run inside the agent: the stack provisions no Kubernetes or Connect targets."""


AGENT_KEY = re.compile(r"agent_key_[A-Za-z0-9_]+")
"""How an agent key looks: the agent image's own registration greps this pattern out of HQ's
answer (lensesio/lenses-docker setup.sh)."""


def agent_key_of(created: Any) -> str | None:
    """The agent key in HQ's answer to creating an environment. The docs say only that the
    answer "contains the agent key"; its field is taken to be `agent_key`, and otherwise the one
    value anywhere in the answer that looks like a key is used."""
    if isinstance(created, dict) and isinstance(created.get("agent_key"), str):
        return created["agent_key"]
    found = set(AGENT_KEY.findall(json.dumps(created)))
    return found.pop() if len(found) == 1 else None


def declared_view(processor: dict[str, Any]) -> dict[str, str]:
    """What the program declares of a processor, read from HQ's answer: the name and SQL live
    under `application`, the description under `metadata` (docs.lenses.io api-reference
    sql-streaming, agent_HttpGetSqlProcessorApiResponse). A processor without a description
    has none to show, which is the program's empty one."""
    application = processor.get("application") or {}
    metadata = processor.get("metadata") or {}
    return {"name": application.get("name") or "", "sql": application.get("sql") or "",
            "description": metadata.get("description") or ""}


class LensesClient:
    """One logged-in session with HQ. Sessions are short-lived on purpose: the provider opens one
    per operation, so nothing outlives a single create, read or delete."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    @classmethod
    def connect(
        cls, hq_url: str, username: str, password: str, **api_options: Any
    ) -> LensesClient:
        """A client logged in to `hq_url`; `api_options` go to `JsonApi` (timeout, retries,
        the CA of an https:// HQ)."""
        client = cls(JsonApi(hq_url.rstrip("/"), **api_options))
        client.login(username, password)
        return client

    def login(self, username: str, password: str) -> None:
        """Log in and keep the session cookie. The password is masked from here on, so no error
        from this client (including a server that echoes the request) can show it."""
        self.api.secrets = (*self.api.secrets, password)
        try:
            response = self.api.request(
                "POST", "/api/v1/login", {"username": username, "password": password},
                ok=(200, 204),
            )
        except ApiError as error:
            if error.status not in (401, 403):
                raise
            raise ApiError(
                mask(
                    f"Lenses HQ at {self.api.base_url} refused the login of user {username!r} "
                    f"(HTTP {error.status}): check the username and password. {error}",
                    self.api.secrets,
                ),
                error.status,
            ) from None
        assert response is not None  # missing_ok is off, so a 404 raised
        cookie = _session_cookie(response.set_cookies)
        if not cookie:
            raise ApiError(
                f"Lenses HQ at {self.api.base_url} accepted the login of user {username!r} but "
                "set no session cookie; is this a Lenses 6 HQ URL?",
                response.status,
            )
        self.api.headers["Cookie"] = cookie

    def list_processors(self, env: str) -> list[dict[str, Any]]:
        path = _streams(env)
        response = self.api.request("GET", path)
        body = response.body if response else None
        items = body.get("processors") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError(f"GET {self.api.base_url}{path}: expected a JSON object with a "
                           f"'processors' list, got {type(body).__name__}")
        return items

    def find(self, env: str, name: str) -> dict[str, Any] | None:
        """The processor called `name`: names are unique within an environment."""
        return next((p for p in self.list_processors(env) if declared_view(p)["name"] == name),
                    None)

    def get(self, env: str, processor_id: str) -> dict[str, Any] | None:
        """The processor, or None when it no longer exists."""
        response = self.api.request(
            "GET", f"{_streams(env)}/{quote(processor_id, safe='')}", missing_ok=True
        )
        return response.body if response and isinstance(response.body, dict) else None

    def create(self, env: str, name: str, sql: str, description: str) -> str:
        """Create the processor; its id. An empty description is left out (the API wants at
        least one character). A taken name is not something retries fix, so the final error
        says what to do about it."""
        body: dict[str, Any] = {"name": name, "sql": sql, "deployment": IN_PROC}
        if description:
            body["description"] = description
        try:
            response = self.api.request("POST", _streams(env), body)
        except ApiError as error:
            if error.status != 409:
                raise
            raise ApiError(
                f"{error}. A processor named {name!r} may already exist in environment "
                f"{env!r} (created outside Pulumi, or by an interrupted run): delete it in "
                "Lenses and run again.",
                error.status,
            ) from None
        created = response.body if response else None
        if isinstance(created, dict) and created.get("id") is not None:
            return str(created["id"])
        # The docs promise "the processor ID and initial state" but give no schema for the
        # answer; without an id in it, the unique name finds it.
        found = self.find(env, name)
        if found is None or found.get("id") is None:
            raise ApiError(f"Lenses accepted processor {name!r} in environment {env!r} but "
                           "does not list it")
        return str(found["id"])

    def delete(self, env: str, processor_id: str) -> None:
        """Stop and remove the processor; one that is already gone counts as deleted."""
        self.api.request(
            "DELETE", f"{_streams(env, 'v1')}/{quote(processor_id, safe='')}", missing_ok=True
        )


    # --- environments ---------------------------------------------------------------------

    def create_environment(self, name: str, tier: str) -> str:
        """Create the environment; its agent key, which HQ gives only in this answer."""
        body = {"name": name, "display_name": name, "tier": tier}
        try:
            response = self.api.request("POST", ENVIRONMENTS, body)
        except ApiError as error:
            if error.status != 409:
                raise
            raise ApiError(
                f"{error}. Environment {name!r} already exists in HQ (made in the UI, or by the "
                "agent's demo registration of an earlier version of this program); its agent key "
                "cannot be read back, so delete the environment in HQ and run again, or set "
                "lensesEnvironmentName to a new name.",
                error.status,
            ) from None
        key = agent_key_of(response.body if response else None)
        if not key:
            raise ApiError(f"Lenses HQ created environment {name!r} but its answer holds no "
                           "agent key (expected a field agent_key or a value agent_key_...)")
        self.api.secrets = (*self.api.secrets, key)
        return key

    def get_environment(self, name: str) -> dict[str, Any] | None:
        """The environment, or None when it no longer exists."""
        response = self.api.request("GET", f"{ENVIRONMENTS}/{quote(name, safe='')}",
                                    missing_ok=True)
        return response.body if response and isinstance(response.body, dict) else None

    def delete_environment(self, name: str) -> None:
        """Remove the environment; one that is already gone counts as deleted."""
        self.api.request("DELETE", f"{ENVIRONMENTS}/{quote(name, safe='')}", missing_ok=True)

    # --- topic metadata ---------------------------------------------------------------------

    def set_topic_metadata(self, env: str, metadata: dict[str, Any]) -> None:
        """Create or replace what Lenses knows of a topic's key and value (`topicName`,
        `keyType`, `valueType`, optional `keySchema`/`valueSchema`)."""
        self.api.request("POST", _agent(env, "api/v1/metadata/topics"), metadata)

    def get_topic_metadata(self, env: str, topic: str) -> dict[str, Any] | None:
        response = self.api.request(
            "GET", _agent(env, f"api/metadata/topics/{quote(topic, safe='')}"), missing_ok=True
        )
        return response.body if response and isinstance(response.body, dict) else None

    def delete_topic_metadata(self, env: str, topic: str) -> None:
        self.api.request(
            "DELETE", _agent(env, f"api/metadata/topics/{quote(topic, safe='')}"),
            missing_ok=True,
        )


def _agent(env: str, path: str) -> str:
    """An agent endpoint, through HQ's per-environment proxy."""
    return f"{ENVIRONMENTS}/{quote(env, safe='')}/proxy/{path}"


def _streams(env: str, version: str = "v2") -> str:
    """The agent's processor endpoint, through HQ's per-environment proxy. Deletes are still
    served by the v1 endpoint in Lenses 6."""
    return _agent(env, f"api/{version}/streams")


def _session_cookie(set_cookies: Sequence[str]) -> str:
    """The `Cookie` header value to send back: the session cookie if named as expected,
    otherwise every cookie set (the name has changed between Lenses releases before)."""
    cookies: SimpleCookie = SimpleCookie()
    for raw in set_cookies:
        try:
            cookies.load(raw)
        except CookieError:
            continue  # an unparsable cookie is not ours; the session one is checked below
    if SESSION_COOKIE in cookies:
        return f"{SESSION_COOKIE}={cookies[SESSION_COOKIE].value}"
    return "; ".join(f"{key}={morsel.value}" for key, morsel in cookies.items())
