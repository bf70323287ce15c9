"""The Metabase component given a Snowflake reporting login, under the mocks harness: the setup,
the Snowflake connection and the dashboard are declared after the container (or its HTTPS
front) is healthy, with the right inputs, and every credential secret; the questions' SQL reads
the tables and fields the sink and the processors write. __main__.py does not pass the
reporting login yet, so the program here builds the component as __main__.py does, with it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_tls as tls
import pytest

from components.docker_host import ContainerDefaults, DockerEngines
from components.metabase import (
    DATABASE_NAME,
    Metabase,
    MetabaseArgs,
    MetabaseSnowflakeSource,
    snowflake_details,
    starter_cards,
)
from components.metabase_resources import SECRET_DETAILS
from components.postgres import AppDatabases, AppDatabasesArgs, PostgresServer, PostgresServerArgs
from components.render.connectors import SinkBuffer, SinkErrors, snowflake_sink_config
from components.render.metabase import template_body
from components.settings import Mode, load_settings
from components.streams import DERIVED_STREAMS
from devtools.harness import PROJECT, USER_SECRETS, ProgramRun, run_program, unwrap

SETUP = "pulumi-python:dynamic/metabase:Setup"
DATABASE = "pulumi-python:dynamic/metabase:Database"
DASHBOARD = "pulumi-python:dynamic/metabase:Dashboard"
PASSWORD = "random:index/randomPassword:RandomPassword"
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def with_reporting() -> dict[str, pulumi.Output]:
    """Metabase as __main__.py builds it, plus a reporting login whose key is generated."""
    s = load_settings(pulumi.Config(), pulumi.get_stack())
    defaults = ContainerDefaults.of(s)
    engines = DockerEngines(s.docker_hosts(), s.name_prefix)
    postgres = PostgresServer(
        "postgres", PostgresServerArgs(s.postgres, engines.on(s.postgres.placement), defaults))
    databases = AppDatabases("databases", AppDatabasesArgs(
        postgres.provider, s.protect, own_server=s.postgres.mode is Mode.CONTAINER))
    key = tls.PrivateKey("reporting-key", algorithm="RSA", rsa_bits=2048)
    source = MetabaseSnowflakeSource(
        account="DEVORG-DEVACCOUNT", warehouse="INGEST", database="INGEST", role="REPORTING",
        user="REPORTING", private_key_pem=key.private_key_pem_pkcs8, after=(key,))
    metabase = Metabase("metabase", MetabaseArgs(
        s.metabase, engines.on(s.metabase.placement), defaults, postgres, databases,
        reporting=source))
    return metabase.stack_outputs()


def run(stack: str = "dev", settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None) -> ProgramRun:
    overrides = {f"{PROJECT}:{k}": v for k, v in (settings or {}).items()}
    return run_program(stack, overrides, {**USER_SECRETS[stack], **(secrets or {})},
                       main=with_reporting)


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run()


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run("prod")


def test_setup_connection_and_dashboard_are_children_of_metabase(dev: ProgramRun) -> None:
    component = dev.one("healthpipe:metabase:Metabase", "metabase")
    for typ, name in ((SETUP, "metabase-setup"), (DATABASE, "metabase-snowflake"),
                      (DASHBOARD, "metabase-dashboard"), (PASSWORD, "metabase-admin-password")):
        assert dev.one(typ, name).parent == component.urn, name


def test_the_setup_waits_for_the_healthy_container_and_logs_in_as_the_generated_admin(
    dev: ProgramRun,
) -> None:
    setup = dev.one(SETUP, "metabase-setup")
    assert dev.container("metabase").urn in setup.dependencies
    assert setup.get("url") == "http://localhost:3000"
    assert setup.get("admin_email") == "admin@health-pipeline.invalid"
    assert setup.get("site_name") == "Health pipeline"
    assert setup.secret("admin_password"), "the admin password is a secret input"
    generated = dev.one(PASSWORD, "metabase-admin-password")
    assert setup.get("admin_password") == generated.computed["result"]
    assert generated.get("length") == 32 and generated.get("minNumeric") == 1
    assert "admin_password" in setup.additional_secret_outputs


def test_the_snowflake_connection_uses_the_reporting_key_pair(dev: ProgramRun) -> None:
    database = dev.one(DATABASE, "metabase-snowflake")
    setup = dev.one(SETUP, "metabase-setup")
    key = dev.one("tls:index/privateKey:PrivateKey", "reporting-key")
    assert {setup.urn, key.urn} <= set(database.dependencies)
    assert (database.get("name"), database.get("engine")) == (DATABASE_NAME, "snowflake")
    # Under mocks a map holding a secret reads back secret as a whole (the SDK lifts it); the
    # resource makes SECRET_DETAILS secret one by one (checked below for every credential).
    assert database.secret("details"), "the details hold the private key"
    details = database.get("details")
    assert details.pop("private-key-value") == key.computed["privateKeyPemPkcs8"]
    assert details == {
        "account": "DEVORG-DEVACCOUNT", "user": "REPORTING", "private-key-options": "uploaded",
        "warehouse": "INGEST", "db": "INGEST", "role": "REPORTING",
        "schema-filters-type": "inclusion", "schema-filters-patterns": "INGEST"}
    assert database.secret("admin_password")
    assert {"details", "admin_password"} <= set(database.additional_secret_outputs)


def test_every_credential_of_the_snowflake_details_is_kept_secret_on_its_own() -> None:
    source = MetabaseSnowflakeSource(account="A-B", warehouse="W", database="D", role="R",
                                     user="U", private_key_pem="k")
    credentials = {key for key in snowflake_details(source)
                   if re.search(r"password|private-key-value|passphrase|token", key)}
    assert credentials == {"private-key-value"}
    assert credentials <= set(SECRET_DETAILS)


def test_the_dashboard_queries_through_the_connection(dev: ProgramRun) -> None:
    dashboard = dev.one(DASHBOARD, "metabase-dashboard")
    database = dev.one(DATABASE, "metabase-snowflake")
    assert database.urn in dashboard.dependencies
    assert dashboard.get("database_id") == database.computed["database_id"]
    assert dashboard.get("name") == "Patient vitals"
    assert dashboard.get("cards") == [dict(c) for c in starter_cards("INGEST", "INGEST")]
    assert dashboard.secret("admin_password")


def test_the_admin_login_is_exported_with_the_password_secret(dev: ProgramRun) -> None:
    email, email_secret = dev.outputs["metabaseAdminEmail"]
    password, password_secret = dev.outputs["metabaseAdminPassword"]
    assert (email, email_secret) == ("admin@health-pipeline.invalid", False)
    assert password_secret and password == dev.one(PASSWORD,
                                                   "metabase-admin-password").computed["result"]


def test_behind_the_https_front_metabase_is_reached_over_https_and_its_ca(prod) -> None:
    setup = prod.one(SETUP, "metabase-setup")
    assert setup.get("url") == "https://analytics.health.internal:3000"
    assert setup.get("ca_pem").startswith("-----BEGIN CERTIFICATE-----")
    assert prod.container("metabase-https").urn in setup.dependencies


def test_a_password_brought_for_a_metabase_set_up_before_is_used_instead() -> None:
    brought = run(secrets={"metabaseAdminPassword": "set-by-hand-0nce"})
    assert not [p for p in brought.of_type(PASSWORD) if p.name == "metabase-admin-password"]
    setup = brought.one(SETUP, "metabase-setup")
    assert setup.secret("admin_password") and setup.get("admin_password") == "set-by-hand-0nce"
    assert brought.outputs["metabaseAdminPassword"] == ("set-by-hand-0nce", True)


def test_with_the_dashboard_off_only_setup_and_connection_are_declared() -> None:
    off = run(settings={"metabaseDashboard": False})
    assert not off.of_type(DASHBOARD)
    assert off.of_type(SETUP) and off.of_type(DATABASE)


def test_an_external_metabase_is_configured_at_its_url_without_a_container() -> None:
    external = run(settings={"metabaseMode": "external",
                             "metabaseUrl": "https://metabase.example.org"})
    setup = external.one(SETUP, "metabase-setup")
    assert setup.get("url") == "https://metabase.example.org"
    containers = {c.urn for c in external.of_type("docker:index/container:Container")}
    assert not containers & set(setup.dependencies), "the provider waits on /api/health"
    assert not [c for c in containers if c.endswith("-metabase")]


@pytest.mark.parametrize("off", ["snowflakeReporting", "snowflakeEnabled"])
def test_without_a_reporting_login_the_program_configures_nothing_in_metabase(off) -> None:
    run = run_program("dev", {f"{PROJECT}:{off}": False})
    assert not [r for r in run.resources if r.type.startswith(
        "pulumi-python:dynamic/metabase:")]
    assert "metabaseAdminPassword" not in run.outputs


def test_both_stacks_set_metabase_up_with_the_reporting_login(run) -> None:
    """The program hands Metabase Snowflake's REPORTING login, never the connector's."""
    details = unwrap(run.one(DATABASE, "metabase-snowflake").inputs)["details"]
    assert (details["user"], details["role"]) == ("reporting_user", "REPORTING")
    assert "kafka_user" not in json.dumps(details)
    assert details["private-key-value"] == run.outputs["snowflakeReportingPrivateKey"][0]
    assert run.outputs["metabaseAdminPassword"][1], "the admin password is a secret output"
    assert run.one(SETUP, "metabase-setup") and run.one(DASHBOARD, "metabase-dashboard")


@pytest.mark.parametrize("field", ["warehouse", "database", "schema"])
def test_a_source_naming_no_snowflake_identifier_is_refused_naming_the_field(field) -> None:
    values = {"warehouse": "INGEST", "database": "INGEST", "schema": "INGEST", field: "my db"}
    with pytest.raises(ValueError, match=rf"MetabaseSnowflakeSource\.{field} = 'my db'"):
        MetabaseSnowflakeSource(account="A-B", role="R", user="U", private_key_pem="k", **values)


# --- the questions' SQL --------------------------------------------------------------------------

def test_every_question_reads_a_table_the_sink_loads() -> None:
    config = snowflake_sink_config("s", "u", "user", "key", "INGEST", "INGEST", "ROLE",
                                   "http://sr", buffer=SinkBuffer(1, 10, 1),
                                   errors=SinkErrors("all", "dlq", 1, True, True, False))
    tables = {pair.split(":")[1] for pair in config["snowflake.topic2table.map"].split(",")}
    read = {m for card in starter_cards("INGEST", "INGEST")
            for m in re.findall(r"FROM INGEST\.INGEST\.(\w+)", card["sql"])}
    assert read == tables == {s.table for s in DERIVED_STREAMS}


@pytest.mark.parametrize("stream", DERIVED_STREAMS, ids=lambda s: s.name)
def test_the_questions_read_the_fields_the_processor_writes(stream) -> None:
    """RECORD_CONTENT holds the record the stream's SQL processor writes: every field a
    question reads is one the processor's SELECT names (`AS <field>`)."""
    written = set(re.findall(r"\bAS\s+(\w+)", (SQL_DIR / "processors" /
                                               f"{stream.name}.sql").read_text()))
    mine = [card for card in starter_cards("INGEST", "INGEST")
            if re.search(rf"\bFROM INGEST\.INGEST\.{stream.table}\b", card["sql"])]
    assert len(mine) == 2
    for card in mine:
        read = set(re.findall(r"RECORD_CONTENT:(\w+)", card["sql"]))
        assert read and read <= written, f"{card['name']} reads {read - written}"


def test_the_templates_note_is_not_sent_and_every_placeholder_is_filled() -> None:
    for card in starter_cards("INGEST", "INGEST"):
        assert not card["sql"].lstrip().startswith("--"), card["name"]
        assert "{" not in card["sql"] and "}" not in card["sql"], card["name"]
    for template in (SQL_DIR / "metabase").glob("*.sql"):
        assert template_body(template.read_text()).startswith("SELECT"), template.name


def test_blood_pressure_draws_one_line_per_device_and_measure() -> None:
    (series,) = [c for c in starter_cards("INGEST", "INGEST")
                 if c["name"] == "Blood pressure: last 24 hours per device"]
    assert series["sql"].count("UNION ALL") == 1
    assert "|| ' systolic'" in series["sql"] and "|| ' diastolic'" in series["sql"]
    assert series["sql"].rstrip().endswith("ORDER BY READING_TIME, SERIES")
    assert series["visualization_settings"] == {"graph.dimensions": ["READING_TIME", "SERIES"],
                                                "graph.metrics": ["READING"]}


def test_a_missing_template_stops_the_program_naming_the_file(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"time_series\.sql cannot be read"):
        (tmp_path / "latest_readings.sql").write_text("SELECT 1")
        starter_cards("INGEST", "INGEST", sql_dir=tmp_path)
