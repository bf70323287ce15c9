"""Metabase configured as code: dynamic-provider resources over its REST API
(components/metabase_api.py) for the first-run setup, a database connection, and a dashboard with
its questions. Each operation waits for Metabase to be ready, logs in as the admin, and masks the
admin password, the session and every secret detail in any error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pulumi
from pulumi import Input
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, UpdateResult

from components.dynamic import ArgsResource, RestProvider
from components.http_api import ApiError
from components.metabase_api import (
    PROTECTED_PASSWORD,
    MetabaseClient,
    native_query,
    native_sql,
)

__all__ = [
    "CARD_KEYS",
    "SECRET_DETAILS",
    "DashboardProvider",
    "DatabaseProvider",
    "MetabaseDashboard",
    "MetabaseDashboardArgs",
    "MetabaseDatabase",
    "MetabaseDatabaseArgs",
    "MetabaseProvider",
    "MetabaseSetup",
    "MetabaseSetupArgs",
    "SetupProvider",
]

SECRET_DETAILS = ("password", "private-key-value")
"""Connection details that are secrets: kept secret in the inputs, masked in errors, and shown
by Metabase only as "**MetabasePass**"."""
CARD_KEYS = ("name", "display", "sql", "visualization_settings", "row", "col", "size_x", "size_y")
"""What a card (a question and its place on the dashboard) is declared with."""
ADMIN_HINT = ("The admin password can only be changed in Metabase itself; if it was, set "
              "metabaseAdminPassword (pulumi config set --secret metabaseAdminPassword) to it.")


def _normal(value: Any) -> Any:
    """A value as diff compares it: surrounding whitespace and the float form of whole numbers
    (state and the engine may hand ids back as 3.0) are no change."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


class MetabaseProvider(RestProvider):
    """A provider over one Metabase (see RestProvider): every operation builds a client from
    the resource's URL, CA and admin login, waits until /api/health answers ok (bounded by the
    resource's ready_timeout_seconds), and logs out when it is done."""

    # A class attribute too: a provider pickled before it held it still finds it.
    poll_interval: float = 2.0
    """Seconds between two health checks while Metabase starts."""

    def __init__(self, timeout: float = 30.0, retries_on_conflict: int = 6,
                 backoff: float = 0.5, poll_interval: float = 2.0) -> None:
        super().__init__(timeout, retries_on_conflict, backoff)
        self.poll_interval = poll_interval

    def _ready(self, props: dict[str, Any], secrets: Sequence[str] = ()) -> MetabaseClient:
        """A client for a Metabase that is up, not yet logged in."""
        client = MetabaseClient(self._api(props["url"], ca_pem=props.get("ca_pem") or ""))
        client.mask(props["admin_password"], *secrets)
        client.wait_until_ready(float(props.get("ready_timeout_seconds") or 300),
                                self.poll_interval)
        return client

    @contextmanager
    def _session(self, props: dict[str, Any],
                 secrets: Sequence[str] = ()) -> Iterator[MetabaseClient]:
        """Logged in as the admin for one operation. After a failure the session is left to
        expire rather than risk a second error hiding the first."""
        client = self._ready(props, secrets)
        client.login(props["admin_email"], props["admin_password"], ADMIN_HINT)
        yield client
        client.logout()

    def _comparable(self, value: Any) -> Any:
        return _normal(value)


class MetabaseResource(ArgsResource):
    """A resource over Metabase: its Args hold the admin login, whose password is secret."""

    def __init__(self, provider: MetabaseProvider, resource_name: str, args: Any,
                 opts: pulumi.ResourceOptions | None = None, computed: tuple[str, ...] = (),
                 secret_outputs: tuple[str, ...] = ()) -> None:
        super().__init__(provider, resource_name, args, opts, secret_inputs=("admin_password",),
                         computed=computed, secret_outputs=secret_outputs)


# --- first-run setup -------------------------------------------------------------------------


class SetupProvider(MetabaseProvider):
    """Metabase's first-run setup: the first user, an admin. Run again on a Metabase already
    set up, it logs in with the same login instead (so a second `pulumi up`, or a Metabase set
    up by an earlier stack, is no error). The names and site name are what the setup writes;
    Metabase owns them afterwards (Admin > Settings, Account settings), so changing them here
    is no change. Metabase has no way back to before its setup: deleting this resource leaves
    the admin in place."""

    INPUTS = ("url", "ca_pem", "admin_email", "admin_password", "first_name", "last_name",
              "site_name", "ready_timeout_seconds")
    REPLACED_BY = ("url",)
    FIRST_RUN_ONLY = ("first_name", "last_name", "site_name")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keep = {key: olds.get(key) for key in self.FIRST_RUN_ONLY}
        return super().diff(_id, olds, {**news, **keep})

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._ready(props)
        properties = client.properties()
        if properties.get("has-user-setup"):
            client.login(props["admin_email"], props["admin_password"],
                         "Metabase is set up already, by someone else or with another "
                         "password: set metabaseAdminEmail and metabaseAdminPassword "
                         "(pulumi config set --secret metabaseAdminPassword) to its admin's "
                         "login.")
        else:
            token = properties.get("setup-token")
            if not isinstance(token, str) or not token:
                raise ApiError(f"Metabase at {props['url']} has no user yet but its public "
                               "settings hold no setup-token to set it up with")
            client.setup(token, props["admin_email"], props["admin_password"],
                         props["first_name"], props["last_name"], props["site_name"])
        client.logout()
        return CreateResult(props["url"], self._inputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Gone when Metabase has no user any more (its application database was reset);
        otherwise the admin login must still work."""
        client = self._ready(props)
        if not client.properties().get("has-user-setup"):
            return ReadResult(None, {})
        client.login(props["admin_email"], props["admin_password"], ADMIN_HINT)
        client.logout()
        return ReadResult(id_, self._inputs(props), self._inputs(props))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the login (or how Metabase is reached) changed: check that it works."""
        with self._session(news):
            pass
        return UpdateResult(self._inputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True, kw_only=True)
class MetabaseLoginArgs:
    """What every Metabase resource needs to reach Metabase and log in: each resource's Args
    extends it (keyword-only, so that their own fields may come without defaults)."""
    url: Input[str]
    """Metabase's URL as reached from the machine running Pulumi."""
    admin_email: Input[str]
    """The Metabase admin every operation logs in as (MetabaseSetup creates it)."""
    admin_password: Input[str]
    """Secret: that admin's password (Metabase's default rule: at least 6 characters, one of
    them a digit; `strong` adds letters of both cases and a special character)."""
    ca_pem: Input[str] = ""
    """An https:// Metabase's CA (PEM); empty trusts the system's CAs."""
    ready_timeout_seconds: int = 300
    """How long an operation waits for Metabase to answer /api/health with ok."""


@dataclass(frozen=True, kw_only=True)
class MetabaseSetupArgs(MetabaseLoginArgs):
    site_name: Input[str]
    """What Metabase calls itself; written once, by the setup."""
    first_name: Input[str] = "Pipeline"
    """The admin's first name; written once, by the setup."""
    last_name: Input[str] = "Admin"
    """The admin's last name; written once, by the setup."""


class MetabaseSetup(MetabaseResource, module="metabase", name="Setup"):
    """Metabase's first-run setup, and the admin every other Metabase resource logs in as."""

    def __init__(self, resource_name: str, args: MetabaseSetupArgs,
                 opts: pulumi.ResourceOptions | None = None,
                 provider: SetupProvider | None = None) -> None:
        super().__init__(provider or SetupProvider(), resource_name, args, opts)


# --- database connection ----------------------------------------------------------------------


class DatabaseProvider(MetabaseProvider):
    """One database connection. Metabase tests the connection before it saves or changes one,
    so a create or update with details it cannot connect with fails and changes nothing. Read
    compares the details the program declares (Metabase adds its own, such as the id under
    which it keeps a private key); a secret detail it shows only as "**MetabasePass**" is taken
    to be the declared one, so a key replaced in the UI is not seen (any update sends the
    declared key again)."""

    INPUTS = ("url", "ca_pem", "admin_email", "admin_password", "name", "engine", "details",
              "ready_timeout_seconds")
    REPLACED_BY = ("url", "engine")

    def _secrets(self, props: dict[str, Any]) -> list[str]:
        details = props.get("details") or {}
        return [str(details[key]) for key in SECRET_DETAILS if details.get(key)]

    def _outs(self, props: dict[str, Any], database_id: int) -> dict[str, Any]:
        return {**self._inputs(props), "database_id": database_id}

    def create(self, props: dict[str, Any]) -> CreateResult:
        with self._session(props, self._secrets(props)) as client:
            created = client.create_database({
                "name": props["name"], "engine": props["engine"],
                "details": dict(props["details"]), "is_full_sync": True})
        database_id = int(created["id"])
        return CreateResult(str(database_id), self._outs(props, database_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self._session(props, self._secrets(props)) as client:
            live = client.get_database(int(id_))
        if live is None:
            return ReadResult(None, {})
        declared = dict(props.get("details") or {})
        seen = live.get("details") if isinstance(live.get("details"), dict) else {}
        details = {}
        for key, value in declared.items():
            shown = seen.get(key)
            if key in SECRET_DETAILS and shown == PROTECTED_PASSWORD:
                shown = value  # hidden: only a declared change is seen
            details[key] = shown
        outs = {**self._outs(props, int(id_)), "name": live.get("name"),
                "engine": live.get("engine"), "details": details}
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Sends every declared detail, secrets included, so that what is declared is what
        Metabase keeps (it tests the connection again when the details change)."""
        with self._session(news, [*self._secrets(news), *self._secrets(olds)]) as client:
            client.update_database(int(id_), {"name": news["name"], "engine": news["engine"],
                                               "details": dict(news["details"])})
        return UpdateResult(self._outs(news, int(id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Metabase deletes the questions built on the database with it."""
        with self._session(props, self._secrets(props)) as client:
            client.delete_database(int(id_))


@dataclass(frozen=True, kw_only=True)
class MetabaseDatabaseArgs(MetabaseLoginArgs):
    name: Input[str]
    """The connection's display name in Metabase."""
    details: Mapping[str, Input[str]]
    """The engine's connection properties as Metabase's API takes them; the SECRET_DETAILS
    among them are kept secret one by one."""
    engine: Input[str] = "snowflake"
    """Metabase's driver name; a new engine is a new connection."""


class MetabaseDatabase(MetabaseResource, module="metabase", name="Database"):
    """A database connection in Metabase."""

    database_id: pulumi.Output[int]
    """Metabase's id of the connection, which questions name."""
    details: pulumi.Output[dict[str, str]]
    """Secret as a whole: the details as applied (or as read back). The inputs keep only the
    SECRET_DETAILS secret."""

    def __init__(self, resource_name: str, args: MetabaseDatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None,
                 provider: DatabaseProvider | None = None) -> None:
        details = {key: pulumi.Output.secret(value) if key in SECRET_DETAILS else value
                   for key, value in args.details.items()}
        super().__init__(provider or DatabaseProvider(), resource_name,
                         replace(args, details=details), opts, computed=("database_id",),
                         secret_outputs=("details",))


# --- dashboard and its questions --------------------------------------------------------------


def _card_body(card: Mapping[str, Any], database_id: int) -> dict[str, Any]:
    return {"name": card["name"], "type": "question", "display": card["display"],
            "visualization_settings": dict(card.get("visualization_settings") or {}),
            "dataset_query": native_query(database_id, card["sql"])}


def _dashcards(cards: Sequence[Mapping[str, Any]], card_ids: Sequence[int],
               existing: Mapping[int, int]) -> list[dict[str, Any]]:
    """The dashboard's whole set of rows: an existing row keeps its id, a new one gets a
    negative id (PUT /api/dashboard/:id creates those)."""
    rows = []
    for index, (card, card_id) in enumerate(zip(cards, card_ids, strict=True)):
        rows.append({"id": existing.get(card_id, -(index + 1)), "card_id": card_id,
                     "row": int(card["row"]), "col": int(card["col"]),
                     "size_x": int(card["size_x"]), "size_y": int(card["size_y"])})
    return rows


class DashboardProvider(MetabaseProvider):
    """A dashboard and the native questions on it, one per declared card, kept in the order
    declared (the state holds their ids). Read shows a question renamed, rewritten, moved,
    resized, archived or deleted in the UI, and a question added to the dashboard there, as
    drift; an update puts back what is declared (the dashboard's cards are replaced as a
    whole) and deletes the questions no longer declared. A dashboard moved to the Trash reads as
    gone."""

    INPUTS = ("url", "ca_pem", "admin_email", "admin_password", "database_id", "name",
              "description", "cards", "ready_timeout_seconds")
    REPLACED_BY = ("url",)

    def _outs(self, props: dict[str, Any], card_ids: Sequence[int]) -> dict[str, Any]:
        return {**self._inputs(props), "card_ids": [int(i) for i in card_ids]}

    def create(self, props: dict[str, Any]) -> CreateResult:
        cards, database_id = list(props["cards"]), int(props["database_id"])
        with self._session(props) as client:
            card_ids: list[int] = []
            dashboard_id: int | None = None
            try:
                for card in cards:
                    card_ids.append(int(client.create_card(_card_body(card, database_id))["id"]))
                dashboard_id = int(client.create_dashboard(props["name"],
                                                           props.get("description") or "")["id"])
                client.update_dashboard(dashboard_id,
                                        {"dashcards": _dashcards(cards, card_ids, {})})
            except ApiError as error:
                self._undo(client, dashboard_id, card_ids, error)
                raise
        return CreateResult(str(dashboard_id), self._outs(props, card_ids))

    @staticmethod
    def _undo(client: MetabaseClient, dashboard_id: int | None, card_ids: Sequence[int],
              error: Exception) -> None:
        """Remove what a failed create made, so a retry does not leave duplicates; a failure
        here is added to the original error, not put in its place."""
        try:
            if dashboard_id is not None:
                client.delete_dashboard(dashboard_id)
            for card_id in card_ids:
                client.delete_card(card_id)
        except ApiError as cleanup:
            error.add_note(f"Removing what the failed create made also failed: {cleanup}")

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        card_ids = [int(i) for i in props.get("card_ids") or []]
        declared = list(props.get("cards") or [])
        with self._session(props) as client:
            live = client.get_dashboard(int(id_))
            if live is None or live.get("archived"):
                return ReadResult(None, {})
            dashcards = [d for d in live.get("dashcards") or [] if isinstance(d, dict)]
            rows = {d.get("card_id"): d for d in dashcards}
            cards: list[dict[str, Any] | None] = []
            for index, card_id in enumerate(card_ids):
                card = client.get_card(card_id)
                if card is None or card.get("archived"):
                    cards.append(None)
                    continue
                row = rows.get(card_id) or {}
                spec = declared[index] if index < len(declared) else {}
                cards.append({
                    "name": card.get("name"), "display": card.get("display"),
                    "sql": native_sql(card.get("dataset_query")),
                    # Not compared: Metabase may fill in defaults of its own.
                    "visualization_settings": spec.get("visualization_settings"),
                    "row": row.get("row"), "col": row.get("col"),
                    "size_x": row.get("size_x"), "size_y": row.get("size_y"),
                })
        cards += [{"added_in_metabase": True, "card_id": d.get("card_id"),
                   "dashcard_id": d.get("id")}
                  for d in dashcards if d.get("card_id") not in card_ids]
        outs = {**self._outs(props, card_ids), "name": live.get("name"),
                "description": live.get("description") or "", "cards": cards}
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        cards, database_id = list(news["cards"]), int(news["database_id"])
        old_ids = [int(i) for i in olds.get("card_ids") or []]
        with self._session(news) as client:
            live = client.get_dashboard(int(id_))
            if live is None:
                raise ApiError(f"Metabase dashboard {id_} ({news['name']!r}) no longer exists: "
                               "run `pulumi refresh`, then `pulumi up` creates it again")
            card_ids: list[int] = []
            for index, card in enumerate(cards):
                body = _card_body(card, database_id)
                old = old_ids[index] if index < len(old_ids) else None
                current = client.get_card(old) if old is not None else None
                if old is not None and current is not None and not current.get("archived"):
                    client.update_card(old, body)
                    card_ids.append(old)
                else:
                    card_ids.append(int(client.create_card(body)["id"]))
            existing = {d.get("card_id"): int(d["id"]) for d in live.get("dashcards") or []
                        if isinstance(d, dict) and d.get("card_id") in card_ids}
            client.update_dashboard(int(id_), {
                "name": news["name"], "description": news.get("description") or None,
                "dashcards": _dashcards(cards, card_ids, existing)})
            for stale in old_ids[len(cards):]:
                client.delete_card(stale)
        return UpdateResult(self._outs(news, card_ids))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self._session(props) as client:
            client.delete_dashboard(int(id_))
            for card_id in props.get("card_ids") or []:
                client.delete_card(int(card_id))


@dataclass(frozen=True, kw_only=True)
class MetabaseDashboardArgs(MetabaseLoginArgs):
    database_id: Input[int]
    """The connection every question queries (MetabaseDatabase.database_id)."""
    name: Input[str]
    """The dashboard's name."""
    cards: Sequence[Mapping[str, Any]]
    """One native question per card, in the order shown: CARD_KEYS (name, display, sql,
    visualization_settings, and its place on the grid: row, col, size_x, size_y)."""
    description: Input[str] = ""
    """Shown under the dashboard's name; empty leaves it out."""

    def __post_init__(self) -> None:
        for index, card in enumerate(self.cards):
            missing = [key for key in CARD_KEYS if key not in card]
            if missing:
                raise ValueError(f"MetabaseDashboardArgs.cards[{index}] lacks "
                                 f"{', '.join(missing)}")


class MetabaseDashboard(MetabaseResource, module="metabase", name="Dashboard"):
    """A Metabase dashboard and its native questions."""

    card_ids: pulumi.Output[list[int]]
    """Metabase's ids of the questions, in the order of the declared cards."""

    def __init__(self, resource_name: str, args: MetabaseDashboardArgs,
                 opts: pulumi.ResourceOptions | None = None,
                 provider: DashboardProvider | None = None) -> None:
        super().__init__(provider or DashboardProvider(), resource_name, args, opts,
                         computed=("card_ids",))
