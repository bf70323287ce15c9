"""Metabase configured as code, under the real engine: the project's Metabase component for an
external Metabase (its admin password given, so it declares only the three dynamic resources:
first-run setup, the Snowflake connection with the REPORTING key pair, the dashboard "Patient
vitals") against the test server tests/fake_metabase.py, which answers the shapes of
Metabase's public sources. What the engine adds to the provider tests: state round-trips,
no perpetual diff on a second preview, drift seen by a refreshed preview and repaired by
`up --refresh`, secrets encrypted in the export, and a destroy that leaves nothing behind."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi import automation as auto
from pulumi.automation.errors import CommandError

from components.docker_host import ContainerDefaults
from components.metabase import Metabase, MetabaseArgs, MetabaseSnowflakeSource
from components.settings import MetabaseSettings, Mode
from devtools.engine import Engine
from tests.fake_metabase import FakeMetabase

ADMIN = "admin@health-pipeline.invalid"
PASSWORD = "Engine-test-Pa55word!"
RESOURCES = 5
"""The stack, the Metabase component, setup, the connection and the dashboard."""
DRIFT_EXIT_CODE = 7


def _key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def metabase_program(url: str, key_pem: str) -> Callable[[], None]:
    def program() -> None:
        settings = MetabaseSettings(
            mode=Mode.EXTERNAL, placement=None, image="metabase/metabase:v0.64.2.2",
            port=3000, url=url, https=None, admin_email=ADMIN,
            admin_password=pulumi.Output.secret(PASSWORD), site_name="Health pipeline",
            dashboard=True)
        source = MetabaseSnowflakeSource(
            account="DEVORG-DEVACCOUNT", warehouse="INGEST", database="INGEST",
            role="REPORTING", user="reporting_user",
            private_key_pem=pulumi.Output.secret(key_pem))
        metabase = Metabase("metabase", MetabaseArgs(
            settings, None, ContainerDefaults("health-pipeline-dev", "127.0.0.1", 300, False),
            None, None, reporting=source))
        for key, value in metabase.stack_outputs().items():
            pulumi.export(key, value)
    return program


@pytest.fixture(scope="module")
def metabase_server():
    server = FakeMetabase()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key_pem() -> str:
    return _key_pem()


@pytest.fixture(scope="module")
def deployment(engine: Engine, metabase_server, key_pem):
    stack = engine.stack("metabase", metabase_program(metabase_server.url, key_pem))
    result = stack.up()
    yield stack, result
    stack.destroy()


def _drift_code(stack: auto.Stack, engine: Engine) -> int:
    with contextlib.suppress(CommandError):
        stack.preview(refresh=True, expect_no_changes=True)
    assert engine.command.last is not None
    return engine.command.last.code


def test_up_sets_metabase_up_with_the_snowflake_connection_and_the_dashboard(
    deployment, metabase_server, key_pem
) -> None:
    _, result = deployment
    assert result.summary.resource_changes == {"create": RESOURCES}
    assert ADMIN in metabase_server.users
    (database,) = metabase_server.databases.values()
    assert database["engine"] == "snowflake"
    assert database["details"]["user"] == "reporting_user"
    assert key_pem not in str(database["details"]), "the key is stored as a secret"
    assert key_pem in metabase_server.secret_values.values()
    (dashboard,) = metabase_server.dashboards.values()
    assert dashboard["name"] == "Patient vitals"
    assert len(dashboard["dashcards"]) == len(metabase_server.cards) > 0
    assert result.outputs["metabaseAdminPassword"].secret


def test_a_second_up_changes_nothing_and_a_refreshed_preview_expects_no_changes(
    deployment, engine
) -> None:
    stack, _ = deployment
    again = stack.up()
    assert again.summary.resource_changes == {"same": RESOURCES}
    refreshed = stack.refresh()
    assert set(refreshed.summary.resource_changes) == {"same"}, refreshed.summary
    assert _drift_code(stack, engine) == 0


def test_a_question_renamed_in_the_ui_is_drift_that_up_refresh_repairs(
    deployment, engine, metabase_server
) -> None:
    stack, _ = deployment
    card = next(iter(metabase_server.cards.values()))
    declared = card["name"]
    card["name"] = "renamed in the UI"
    assert _drift_code(stack, engine) == DRIFT_EXIT_CODE
    repaired = stack.up(refresh=True)
    assert repaired.summary.resource_changes.get("update") == 1, repaired.summary
    names = {c["name"] for c in metabase_server.cards.values()}
    assert declared in names and "renamed in the UI" not in names
    assert _drift_code(stack, engine) == 0


def test_the_stack_export_holds_no_secret_in_plain_text(deployment, engine, key_pem) -> None:
    exported = engine.cli("stack", "export", "--stack", "metabase").stdout
    for secret in (PASSWORD, key_pem, *key_pem.splitlines()[1:3]):
        assert secret not in exported
    assert "ciphertext" in exported


def test_destroy_removes_the_dashboard_its_questions_and_the_connection(
    engine, metabase_server, key_pem
) -> None:
    """A stack of its own, so the module's deployment stays."""
    stack = engine.stack("metabase-destroy", metabase_program(metabase_server.url, key_pem))
    before = (set(metabase_server.databases), set(metabase_server.dashboards),
              set(metabase_server.cards))
    stack.up()
    stack.destroy()
    assert (set(metabase_server.databases), set(metabase_server.dashboards),
            set(metabase_server.cards)) == before
    assert stack.destroy().summary.resource_changes in ({}, None)
