"""The Metabase providers (first-run setup, the Snowflake connection, the dashboard and its
questions), called as the engine calls them, against the Metabase test server: create, read
with drift from changes made in the UI, update, delete, re-runs, a slow start, and no secret in
any error."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import traceback
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.dynamic.dynamic import serialize_provider

from components.http_api import ApiError, JsonApi
from components.metabase import DATABASE_NAME, starter_cards
from components.metabase_api import (
    PROTECTED_PASSWORD,
    SESSION_HEADER,
    MetabaseClient,
    MetabaseNotReady,
    native_sql,
)
from components.metabase_resources import DashboardProvider, DatabaseProvider, SetupProvider
from devtools.harness import ROOT
from tests.fake_metabase import FakeMetabase, metabase_fixture  # noqa: F401 - the fixture

FAST = {"timeout": 2.0, "retries_on_conflict": 1, "backoff": 0.01, "poll_interval": 0.02}
ADMIN = "admin@health-pipeline.invalid"
PASSWORD = "Gen3rated-Admin-Pa55word-4-Metabase"
KEY_PEM = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()).decode()
WEAK = "no-digits-at-all"
CARDS = starter_cards("INGEST", "INGEST")


def login(metabase: FakeMetabase, **overrides: Any) -> dict[str, Any]:
    return {"__provider": "serialized", "url": metabase.url, "ca_pem": "", "admin_email": ADMIN,
            "admin_password": PASSWORD, "ready_timeout_seconds": 2, **overrides}


def setup_props(metabase: FakeMetabase, **overrides: Any) -> dict[str, Any]:
    return {**login(metabase), "first_name": "Pipeline", "last_name": "Admin",
            "site_name": "Health pipeline", **overrides}


def database_props(metabase: FakeMetabase, **detail_overrides: Any) -> dict[str, Any]:
    details = {"account": "MYORG-MYACCOUNT", "user": "REPORTING",
               "private-key-options": "uploaded", "private-key-value": KEY_PEM,
               "warehouse": "INGEST", "db": "INGEST", "role": "REPORTING",
               "schema-filters-type": "inclusion", "schema-filters-patterns": "INGEST"}
    return {**login(metabase), "name": DATABASE_NAME, "engine": "snowflake",
            "details": {**details, **detail_overrides}}


def dashboard_props(metabase: FakeMetabase, database_id: int,
                    cards: Any = CARDS) -> dict[str, Any]:
    return {**login(metabase), "database_id": database_id, "name": "Patient vitals",
            "description": "Vital signs per device", "cards": copy.deepcopy(list(cards))}


def everything_said(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.fixture
def set_up(metabase: FakeMetabase) -> FakeMetabase:
    """A Metabase the setup provider has set up."""
    SetupProvider(**FAST).create(setup_props(metabase))
    return metabase


@pytest.fixture
def database_id(set_up: FakeMetabase) -> int:
    return int(DatabaseProvider(**FAST).create(database_props(set_up)).id)


# --- first-run setup ---------------------------------------------------------------------------

def test_setup_creates_the_admin_with_the_setup_token_and_logs_out(metabase) -> None:
    token = metabase.setup_token
    created = SetupProvider(**FAST).create(setup_props(metabase))
    assert created.id == metabase.url
    (post,) = metabase.calls("POST", "/api/setup")
    assert post.body["token"] == token
    assert post.body["user"] == {"first_name": "Pipeline", "last_name": "Admin", "email": ADMIN,
                                 "password": PASSWORD}
    assert post.body["prefs"]["site_name"] == "Health pipeline"
    assert metabase.users[ADMIN]["password"] == PASSWORD
    assert metabase.setup_token is None, "the token is spent"
    assert metabase.sessions == {}, "the setup's session was ended"
    assert "__provider" not in created.outs


def test_setup_run_again_logs_in_instead_of_failing(metabase) -> None:
    provider = SetupProvider(**FAST)
    provider.create(setup_props(metabase))
    again = provider.create(setup_props(metabase))
    assert again.id == metabase.url
    assert len(metabase.calls("POST", "/api/setup")) == 1
    assert len(metabase.calls("POST", "/api/session")) == 1
    assert list(metabase.users) == [ADMIN]


def test_setup_of_a_metabase_someone_else_set_up_says_what_to_set_and_hides_the_password(
    metabase,
) -> None:
    metabase.add_admin(ADMIN, "their-0wn-password")
    metabase.echo_secrets = True
    with pytest.raises(ApiError) as raised:
        SetupProvider(**FAST).create(setup_props(metabase))
    text = everything_said(raised.value)
    assert "refused the login of 'admin@health-pipeline.invalid' (HTTP 401)" in text
    assert "metabaseAdminPassword" in text and "did not match stored password" in text
    assert PASSWORD not in text
    assert not metabase.calls("POST", "/api/setup")


def test_a_password_metabase_finds_too_weak_fails_with_its_reason_and_masked(metabase) -> None:
    metabase.echo_secrets = True
    with pytest.raises(ApiError) as raised:
        SetupProvider(**FAST).create(setup_props(metabase, admin_password=WEAK))
    text = everything_said(raised.value)
    assert "refused its first-run setup" in text
    assert "user.password: password is too common" in text
    assert WEAK not in text
    assert not metabase.users


def test_read_setup_checks_the_login_and_sees_a_reset_metabase_as_gone(set_up) -> None:
    provider = SetupProvider(**FAST)
    read = provider.read(set_up.url, setup_props(set_up))
    assert read.id == set_up.url and read.inputs["admin_email"] == ADMIN
    set_up.users.clear()  # the application database was wiped: Metabase asks for setup again
    assert provider.read(set_up.url, setup_props(set_up)).id is None


def test_read_setup_after_the_password_was_changed_in_metabase_says_what_to_do(set_up) -> None:
    set_up.users[ADMIN]["password"] = "changed-in-the-UI-1"
    with pytest.raises(ApiError) as raised:
        SetupProvider(**FAST).read(set_up.url, setup_props(set_up))
    text = everything_said(raised.value)
    assert "can only be changed in Metabase itself" in text and "metabaseAdminPassword" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(("key", "value", "changed", "replaced"), [
    ("site_name", "Another name", False, False),
    ("first_name", "Someone", False, False),
    ("admin_password", "An0ther-password", True, False),
    ("url", "http://127.0.0.1:1", True, True),
])
def test_setup_diff_ignores_what_only_the_first_run_writes(
    metabase, key: str, value: str, changed: bool, replaced: bool,
) -> None:
    olds = setup_props(metabase)
    diff = SetupProvider(**FAST).diff(metabase.url, olds, {**olds, key: value})
    assert diff.changes is (None if changed else False)
    assert diff.replaces == ([key] if replaced else [])


def test_deleting_the_setup_leaves_the_admin_in_place(set_up) -> None:
    SetupProvider(**FAST).delete(set_up.url, setup_props(set_up))
    assert ADMIN in set_up.users
    assert not set_up.calls("DELETE", "/api/user")


# --- readiness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [503, 302])
def test_operations_wait_while_metabase_starts(metabase, status: int) -> None:
    metabase.startup_checks, metabase.startup_status = 3, status
    SetupProvider(**FAST).create(setup_props(metabase))
    assert metabase.health_checks == 4
    assert ADMIN in metabase.users


def test_a_metabase_that_never_gets_ready_fails_after_a_bounded_wait(metabase) -> None:
    metabase.startup_checks = 10**6
    with pytest.raises(MetabaseNotReady) as raised:
        SetupProvider(**FAST).create(setup_props(metabase, ready_timeout_seconds=0.3))
    text = str(raised.value)
    assert "is not ready after" in text and "in 0.3 s" in text
    assert 'answered HTTP 503 {"status": "initializing"' in text
    assert 2 <= metabase.health_checks <= 16
    assert not metabase.calls("POST", "/api/setup")


def test_an_unreachable_metabase_fails_after_the_wait_naming_the_reason() -> None:
    props = setup_props(FakeMetabase(url="http://127.0.0.1:9"), ready_timeout_seconds=0.2)
    with pytest.raises(MetabaseNotReady, match="could not connect") as raised:
        SetupProvider(**FAST).create(props)
    assert PASSWORD not in everything_said(raised.value)


def test_a_slow_answer_times_out_with_a_clear_error_and_no_secret(set_up) -> None:
    set_up.delay = 0.8
    with pytest.raises(ApiError, match=r"timed out after 0\.3 s") as raised:
        DatabaseProvider(**{**FAST, "timeout": 0.3}).create(database_props(set_up))
    assert PASSWORD not in everything_said(raised.value)


def test_any_other_health_answer_is_an_error_at_once(metabase) -> None:
    """A URL that is not Metabase's (here a path under it) is not waited for."""
    client = MetabaseClient(JsonApi(metabase.url + "/nothing-here", timeout=2.0))
    with pytest.raises(ApiError, match="HTTP 401: Unauthenticated"):
        client.wait_until_ready(timeout=5, interval=0.01)
    assert len(metabase.requests) == 1


# --- the Snowflake connection ------------------------------------------------------------------

def test_create_database_sends_the_key_pair_details_metabase_tests(set_up) -> None:
    created = DatabaseProvider(**FAST).create(database_props(set_up))
    (post,) = set_up.calls("POST", "/api/database")
    assert post.body == {"name": DATABASE_NAME, "engine": "snowflake",
                         "details": database_props(set_up)["details"], "is_full_sync": True}
    assert post.headers.get(SESSION_HEADER), "sent with the admin's session"
    database_id = int(created.id)
    assert created.outs["database_id"] == database_id
    assert set_up.effective_details(database_id)["private-key-value"] == KEY_PEM
    assert set_up.sessions == {}


def test_read_database_shows_no_drift_although_metabase_hides_the_key(set_up, database_id):
    provider = DatabaseProvider(**FAST)
    read = provider.read(str(database_id), database_props(set_up))
    shown = set_up._public_database(database_id)["details"]
    assert shown["private-key-value"] == PROTECTED_PASSWORD, "the key is hidden on GET"
    assert read.inputs["details"]["private-key-value"] == KEY_PEM
    assert provider.diff(str(database_id), read.inputs, database_props(set_up)).changes is False


def test_read_database_shows_a_rename_and_a_detail_changed_in_the_ui(set_up, database_id):
    set_up.databases[database_id]["name"] = "Renamed in the UI"
    set_up.databases[database_id]["details"]["warehouse"] = "COMPUTE_WH"
    provider = DatabaseProvider(**FAST)
    read = provider.read(str(database_id), database_props(set_up))
    assert read.inputs["name"] == "Renamed in the UI"
    assert read.inputs["details"]["warehouse"] == "COMPUTE_WH"
    diff = provider.diff(str(database_id), read.inputs, database_props(set_up))
    assert diff.changes is None and diff.replaces == []  # an update puts it back


def test_update_database_puts_back_the_declared_name_and_details(set_up, database_id) -> None:
    set_up.databases[database_id]["details"]["warehouse"] = "COMPUTE_WH"
    provider = DatabaseProvider(**FAST)
    olds = provider.read(str(database_id), database_props(set_up)).inputs
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    news = database_props(set_up, **{"private-key-value": new_key})
    updated = provider.update(str(database_id), olds, news)
    details = set_up.effective_details(database_id)
    assert details["warehouse"] == "INGEST" and details["private-key-value"] == new_key
    assert updated.outs["database_id"] == database_id


def test_an_update_metabase_cannot_connect_with_changes_nothing(set_up, database_id) -> None:
    set_up.accept_connections, set_up.echo_secrets = False, True
    before = set_up.effective_details(database_id)
    with pytest.raises(ApiError) as raised:
        DatabaseProvider(**FAST).update(str(database_id), database_props(set_up),
                                        database_props(set_up, role="OTHER"))
    text = everything_said(raised.value)
    assert "refused the new settings" in text and "JWT token is invalid" in text
    assert KEY_PEM not in text and PASSWORD not in text
    assert set_up.effective_details(database_id) == before


@pytest.mark.parametrize("legacy_valid_flag", [False, True])
def test_a_key_metabase_cannot_use_is_refused_with_nothing_saved_and_the_key_masked(
    set_up, legacy_valid_flag: bool,
) -> None:
    set_up.echo_secrets, set_up.legacy_valid_flag = True, legacy_valid_flag
    broken = KEY_PEM.replace("-----BEGIN PRIVATE KEY-----", "-----BEGIN KEY-----")
    with pytest.raises(ApiError) as raised:
        DatabaseProvider(**FAST).create(database_props(set_up, **{"private-key-value": broken}))
    text = everything_said(raised.value)
    assert "Metabase could not connect to database" in text and "saved nothing" in text
    assert "Private key provided is invalid or not supported" in text
    assert "private-key: invalid PEM private key" in text
    body_lines = [line for line in broken.splitlines() if not line.startswith("-----")]
    assert not any(line in text for line in body_lines), "a line of the key leaked"
    assert set_up.databases == {}


def test_a_snowflake_that_refuses_the_key_is_refused_and_masked(set_up) -> None:
    set_up.accept_connections, set_up.echo_secrets = False, True
    with pytest.raises(ApiError, match="JWT token is invalid") as raised:
        DatabaseProvider(**FAST).create(database_props(set_up))
    text = everything_said(raised.value)
    assert KEY_PEM not in text and json.dumps(KEY_PEM)[1:-1] not in text
    assert set_up.databases == {}


def test_missing_details_name_what_is_missing(set_up) -> None:
    with pytest.raises(ApiError, match="warehouse: value is required"):
        DatabaseProvider(**FAST).create(database_props(set_up, warehouse=""))


@pytest.mark.parametrize(("key", "replaced"), [("engine", True), ("url", True),
                                               ("name", False), ("details", False)])
def test_database_diff_replaces_on_engine_and_url_only(set_up, key: str, replaced: bool) -> None:
    olds = database_props(set_up)
    value = {"db": "OTHER"} if key == "details" else "postgres"
    diff = DatabaseProvider(**FAST).diff("1", olds, {**olds, key: value})
    assert diff.changes is None
    assert diff.replaces == ([key] if replaced else [])


def test_delete_database_removes_it_and_is_idempotent(set_up, database_id) -> None:
    provider = DatabaseProvider(**FAST)
    provider.delete(str(database_id), database_props(set_up))
    assert set_up.databases == {}
    assert provider.read(str(database_id), database_props(set_up)).id is None
    provider.delete(str(database_id), database_props(set_up))  # already gone: fine


# --- the dashboard -------------------------------------------------------------------------------

def test_the_starter_dashboard_has_two_questions_per_vital_sign_table() -> None:
    assert len(CARDS) == 8
    tables = {"BLOOD_PRESSURE", "HEART_RATE", "OXYGEN_SATURATION", "TEMPERATURE"}
    for table in tables:
        mine = [c for c in CARDS if re.search(rf"\bFROM INGEST\.INGEST\.{table}\b", c["sql"])]
        assert sorted(c["display"] for c in mine) == ["line", "table"], table


def test_create_dashboard_makes_native_questions_and_places_them(set_up, database_id) -> None:
    created = DashboardProvider(**FAST).create(dashboard_props(set_up, database_id))
    card_ids = created.outs["card_ids"]
    assert len(card_ids) == 8 and set(card_ids) == set(set_up.cards)
    for card_id, spec in zip(card_ids, CARDS, strict=True):
        stored = set_up.cards[card_id]
        assert stored["name"] == spec["name"] and stored["display"] == spec["display"]
        assert stored["dataset_query"] == {"database": database_id, "type": "native",
                                           "native": {"query": spec["sql"]}}
    dashboard = set_up.dashboards[int(created.id)]
    assert dashboard["name"] == "Patient vitals"
    placed = {d["card_id"]: (d["row"], d["col"], d["size_x"], d["size_y"])
              for d in dashboard["dashcards"]}
    assert placed == {i: (s["row"], s["col"], s["size_x"], s["size_y"])
                      for i, s in zip(card_ids, CARDS, strict=True)}


@pytest.mark.parametrize("mbql5", [True, False])
def test_read_dashboard_right_after_create_shows_no_drift_in_either_query_shape(
    set_up, database_id, mbql5: bool,
) -> None:
    set_up.mbql5 = mbql5
    provider = DashboardProvider(**FAST)
    props = dashboard_props(set_up, database_id)
    created = provider.create(props)
    some_card = set_up._public_card(created.outs["card_ids"][0], legacy=False)
    assert ("stages" in some_card["dataset_query"]) is mbql5
    read = provider.read(created.id, {**props, **created.outs})
    assert read.id == created.id
    assert provider.diff(created.id, read.inputs, props).changes is False


def _created(set_up: FakeMetabase, database_id: int) -> tuple[DashboardProvider, dict, Any]:
    provider = DashboardProvider(**FAST)
    props = dashboard_props(set_up, database_id)
    return provider, props, provider.create(props)


def test_sql_changed_in_the_ui_is_drift_and_an_update_puts_it_back(set_up, database_id) -> None:
    provider, props, created = _created(set_up, database_id)
    first = created.outs["card_ids"][0]
    set_up.cards[first]["dataset_query"]["native"]["query"] = "SELECT 1"
    read = provider.read(created.id, {**props, **created.outs})
    assert read.inputs["cards"][0]["sql"] == "SELECT 1"
    assert provider.diff(created.id, read.inputs, props).changes is None
    updated = provider.update(created.id, {**read.inputs, **read.outs}, props)
    assert updated.outs["card_ids"] == created.outs["card_ids"], "the same questions, fixed"
    assert set_up.cards[first]["dataset_query"]["native"]["query"] == CARDS[0]["sql"]
    again = provider.read(created.id, {**props, **updated.outs})
    assert provider.diff(created.id, again.inputs, props).changes is False


def test_questions_moved_removed_or_added_in_the_ui_are_drift_and_put_right(
    set_up, database_id,
) -> None:
    provider, props, created = _created(set_up, database_id)
    dashboard = set_up.dashboards[int(created.id)]
    dashboard["dashcards"][1]["col"] = 0  # moved
    removed = dashboard["dashcards"].pop(2)  # taken off the dashboard
    stray = set_up._next_id("card")
    set_up.cards[stray] = {**set_up.cards[removed["card_id"]], "id": stray, "name": "Mine"}
    dashboard["dashcards"].append({"id": 999, "card_id": stray, "row": 30, "col": 0,
                                   "size_x": 4, "size_y": 4})  # added in the UI
    read = provider.read(created.id, {**props, **created.outs})
    cards = read.inputs["cards"]
    assert cards[1]["col"] == 0 and cards[2]["row"] is None
    assert cards[-1] == {"added_in_metabase": True, "card_id": stray, "dashcard_id": 999}
    assert provider.diff(created.id, read.inputs, props).changes is None
    provider.update(created.id, {**read.inputs, **read.outs}, props)
    rows = {d["card_id"]: d for d in set_up.dashboards[int(created.id)]["dashcards"]}
    assert set(rows) == set(created.outs["card_ids"]), "exactly the declared questions"
    assert rows[created.outs["card_ids"][1]]["col"] == CARDS[1]["col"]
    assert stray in set_up.cards, "a question made in the UI is only taken off the dashboard"


def test_a_question_deleted_in_the_ui_is_made_again(set_up, database_id) -> None:
    provider, props, created = _created(set_up, database_id)
    gone = created.outs["card_ids"][3]
    set_up._drop_card(gone)
    read = provider.read(created.id, {**props, **created.outs})
    assert read.inputs["cards"][3] is None
    updated = provider.update(created.id, {**read.inputs, **read.outs}, props)
    new_id = updated.outs["card_ids"][3]
    assert new_id != gone and set_up.cards[new_id]["name"] == CARDS[3]["name"]
    assert new_id in {d["card_id"] for d in set_up.dashboards[int(created.id)]["dashcards"]}


def test_fewer_declared_cards_delete_the_questions_no_longer_declared(set_up, database_id):
    provider, props, created = _created(set_up, database_id)
    news = dashboard_props(set_up, database_id, CARDS[:2])
    updated = provider.update(created.id, {**props, **created.outs}, news)
    assert updated.outs["card_ids"] == created.outs["card_ids"][:2]
    assert set(set_up.cards) == set(created.outs["card_ids"][:2])
    assert len(set_up.dashboards[int(created.id)]["dashcards"]) == 2


def test_a_dashboard_moved_to_the_trash_reads_as_gone(set_up, database_id) -> None:
    provider, props, created = _created(set_up, database_id)
    set_up.dashboards[int(created.id)]["archived"] = True
    assert provider.read(created.id, {**props, **created.outs}).id is None


def test_delete_dashboard_removes_it_and_its_questions_and_is_idempotent(set_up, database_id):
    provider, props, created = _created(set_up, database_id)
    state = {**props, **created.outs}
    provider.delete(created.id, state)
    assert set_up.dashboards == {} and set_up.cards == {}
    assert provider.read(created.id, state).id is None
    provider.delete(created.id, state)  # already gone: fine


def test_a_create_that_fails_halfway_removes_what_it_made(set_up, database_id) -> None:
    cards = [dict(CARDS[0]), {**CARDS[1], "display": ""}]
    with pytest.raises(ApiError, match="display: value must be a non-blank string"):
        DashboardProvider(**FAST).create(dashboard_props(set_up, database_id, cards))
    assert set_up.cards == {} and set_up.dashboards == {}


def test_the_test_server_refuses_what_metabase_refuses(set_up, database_id) -> None:
    """The closed maps are enforced, so the provider's success above means something."""
    _, _, created = _created(set_up, database_id)
    client = MetabaseClient(JsonApi(set_up.url, timeout=2.0))
    client.login(ADMIN, PASSWORD)
    row = {"id": -1, "card_id": created.outs["card_ids"][0], "row": 0, "col": 0, "size_x": 4,
           "size_y": 4}
    with pytest.raises(ApiError, match="width_px: disallowed key"):
        client.update_dashboard(int(created.id), {"dashcards": [{**row, "width_px": 3}]})
    with pytest.raises(ApiError, match="dashcard 12345 is not on this dashboard"):
        client.update_dashboard(int(created.id), {"dashcards": [{**row, "id": 12345}]})
    with pytest.raises(ApiError, match="collection: disallowed key"):
        client.api.request("POST", "/api/dashboard", {"name": "x", "collection": 1})
    anonymous = JsonApi(set_up.url, timeout=2.0)
    with pytest.raises(ApiError, match="HTTP 401: Unauthenticated"):
        anonymous.request("GET", f"/api/dashboard/{created.id}")


# --- secrets and the provider as the engine runs it ----------------------------------------------

def test_the_session_is_masked_once_logged_in(set_up) -> None:
    client = MetabaseClient(JsonApi(set_up.url, timeout=2.0))
    client.login(ADMIN, PASSWORD)
    session = client.api.headers[SESSION_HEADER]
    assert session in client.api.secrets and PASSWORD in client.api.secrets


def test_native_sql_reads_both_query_shapes() -> None:
    legacy = {"database": 1, "type": "native", "native": {"query": "SELECT 1"}}
    mbql5 = {"lib/type": "mbql/query", "database": 1,
             "stages": [{"lib/type": "mbql.stage/native", "native": "SELECT 1"}]}
    assert native_sql(legacy) == native_sql(mbql5) == "SELECT 1"
    assert native_sql({"lib/type": "mbql/query", "stages": [{"lib/type": "mbql.stage/mbql"}]}) \
        is None


def test_the_serialized_provider_loads_in_a_fresh_interpreter(metabase) -> None:
    """The engine runs dynamic providers in another process from the project folder."""
    blob = serialize_provider(SetupProvider(**FAST))
    code = ("import base64, dill, json, sys\n"
            "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
            "print(json.dumps(p.create(json.loads(sys.argv[2])).id))\n")
    result = subprocess.run([sys.executable, "-c", code, blob,
                             json.dumps(setup_props(metabase))],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == metabase.url and ADMIN in metabase.users


def test_a_provider_pickled_without_its_settings_still_answers(metabase) -> None:
    """State written by an older provider holds one with no attributes: delete and refresh run
    with that one, which must fall back to the class defaults (poll_interval among them)."""
    bare = SetupProvider.__new__(SetupProvider)
    assert vars(bare) == {}
    assert bare.poll_interval == 2.0 and bare.timeout == 30.0
    assert bare.create(setup_props(metabase)).id == metabase.url
