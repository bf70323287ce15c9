"""The Snowflake ingest objects, their grants and ordering, and the connector's outputs."""

from __future__ import annotations

import base64
import re

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.settings import SettingsError, load_settings
from components.settings.files import pem_body
from devtools.harness import PROJECT, USER_SECRETS, ProgramRun, merge_config, run_program

SF = "snowflake:index/"
USER = f"{SF}serviceUser:ServiceUser"
OWNERSHIP = f"{SF}grantOwnership:GrantOwnership"
ROLE_GRANT = f"{SF}grantAccountRole:GrantAccountRole"


def test_provider_uses_key_pair_auth_set_explicitly(run: ProgramRun) -> None:
    provider = run.one("pulumi:providers:snowflake", "snowflake-provider")
    expected = {
        "dev": ("DEVORG", "DEVACCOUNT", "DEVELOPER"),
        "prod": ("HEALTHORG", "PRODINGEST", "PULUMI_DEPLOY"),
    }[run.stack]
    assert (provider.get("organizationName"), provider.get("accountName"),
            provider.get("user")) == expected
    assert provider.get("role") == "ACCOUNTADMIN"
    assert provider.get("authenticator") == "SNOWFLAKE_JWT"
    assert provider.secret("privateKey")
    assert "password" not in provider.inputs


def test_every_snowflake_resource_uses_the_explicit_provider(run: ProgramRun) -> None:
    provider = run.one("pulumi:providers:snowflake", "snowflake-provider")
    resources = [r for r in run.resources if r.type.startswith(SF)]
    assert len(resources) == 10 + 9, "INGEST's ten, REPORTING's nine"
    for r in resources:
        assert r.provider_urn == provider.urn, r.name


def test_warehouse_role_database_and_schema_are_upper_case_ingest(run: ProgramRun) -> None:
    warehouse = run.one(f"{SF}warehouse:Warehouse", "snowflake-warehouse")
    size = {"dev": "XSMALL", "prod": "SMALL"}[run.stack]
    assert warehouse.get("name") == "INGEST"
    assert warehouse.get("warehouseSize") == size
    assert warehouse.get("autoSuspend") == 60
    assert warehouse.get("autoResume") == "true"
    assert warehouse.get("initiallySuspended") is True
    assert run.one(f"{SF}accountRole:AccountRole", "snowflake-role").get("name") == "INGEST"
    assert run.one(f"{SF}database:Database", "snowflake-database").get("name") == "INGEST"
    schema = run.one(f"{SF}schema:Schema", "snowflake-schema")
    assert (schema.get("database"), schema.get("name")) == ("INGEST", "INGEST")


def test_role_may_use_and_operate_the_warehouse(run: ProgramRun) -> None:
    grant = run.one(f"{SF}grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
                    "snowflake-warehouse-usage")
    assert grant.get("accountRoleName") == "INGEST"
    assert sorted(grant.get("privileges")) == ["OPERATE", "USAGE"]
    assert grant.get("onAccountObject") == {"objectType": "WAREHOUSE", "objectName": "INGEST"}


def test_ownership_moves_to_ingest_only_after_the_admin_role_inherits_it(run) -> None:
    to_admin = run.one(ROLE_GRANT, "snowflake-role-to-admin")
    assert to_admin.get("roleName") == "INGEST"
    assert to_admin.get("parentRoleName") == "ACCOUNTADMIN"
    schema_owner = run.one(OWNERSHIP, "snowflake-schema-ownership")
    database_owner = run.one(OWNERSHIP, "snowflake-database-ownership")
    assert schema_owner.get("on") == {"objectType": "SCHEMA", "objectName": "INGEST.INGEST"}
    assert database_owner.get("on") == {"objectType": "DATABASE", "objectName": "INGEST"}
    for grant in (schema_owner, database_owner):
        assert grant.get("accountRoleName") == "INGEST"
        assert to_admin.urn in grant.dependencies, f"{grant.name} may lock the provider out"
    assert schema_owner.urn in database_owner.dependencies
    schema = run.one(f"{SF}schema:Schema", "snowflake-schema")
    assert schema.urn in schema_owner.dependencies


def test_service_user_is_key_pair_only_with_the_seed_defaults(run: ProgramRun) -> None:
    user = run.one(USER, "snowflake-user")
    assert user.get("name") == "INGEST"
    assert user.get("loginName") == "kafka_user" and user.secret("loginName")
    assert user.get("defaultWarehouse") == "INGEST"
    assert user.get("defaultNamespace") == "INGEST.INGEST"
    assert user.get("defaultRole") == "INGEST"
    assert user.get("disabled") == "false"
    assert not any("password" in key.lower() for key in user.inputs)
    assert "rsaPublicKey2" not in user.inputs, "slot 2 is empty until a rotation starts"
    grant = run.one(ROLE_GRANT, "snowflake-role-to-user")
    assert (grant.get("roleName"), grant.get("userName")) == ("INGEST", "INGEST")


def test_public_key_is_one_base64_line_of_the_generated_4096_bit_key(run: ProgramRun) -> None:
    body = run.one(USER, "snowflake-user").get("rsaPublicKey")
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", body), "one line, no header, no newline"
    key = serialization.load_der_public_key(base64.b64decode(body))
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
    tls_key = run.one("tls:index/privateKey:PrivateKey", "snowflake-keys-slot1")
    assert (tls_key.get("algorithm"), tls_key.get("rsaBits")) == ("RSA", 4096)


def test_connector_private_key_is_the_secret_pkcs8_body_of_that_key(run: ProgramRun) -> None:
    value, secret = run.outputs["snowflakePrivateKey"]
    assert secret
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", value)
    private = serialization.load_der_private_key(base64.b64decode(value), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pem_body(public.decode()) == run.one(USER, "snowflake-user").get("rsaPublicKey")


def test_connector_outputs(run: ProgramRun) -> None:
    url = {"dev": "devorg-devaccount", "prod": "healthorg-prodingest"}[run.stack]
    values = {k: v for k, (v, _) in run.outputs.items()}
    assert values["snowflakeUrl"] == f"{url}.snowflakecomputing.com:443"
    assert values["snowflakeUser"] == "kafka_user"
    assert (values["snowflakeDatabase"], values["snowflakeSchema"]) == ("INGEST", "INGEST")
    assert (values["snowflakeRole"], values["snowflakeWarehouse"]) == ("INGEST", "INGEST")


def test_prod_protects_the_database_and_schema(runs) -> None:
    for stack, expected in (("dev", False), ("prod", True)):
        for typ, name in ((f"{SF}database:Database", "snowflake-database"),
                          (f"{SF}schema:Schema", "snowflake-schema")):
            assert runs[stack].one(typ, name).protect is expected, f"{stack} {name}"


def test_disabled_snowflake_declares_no_snowflake_resource() -> None:
    run = run_program("prod", overrides={f"{PROJECT}:snowflakeEnabled": False})
    prefixes = ("snowflake:", "tls:", "pulumi:providers:snowflake", "healthpipe:snowflake")
    # tls: resources other than the connector's keys belong to the TLS servers.
    assert not [r.name for r in run.resources if r.type.startswith(prefixes)
                and (not r.type.startswith("tls:") or r.name.startswith("snowflake"))]
    assert not [k for k in run.outputs if k.startswith("snowflake")]


def test_enabled_but_unconfigured_snowflake_names_every_missing_key() -> None:
    blank = {f"{PROJECT}:{k}": "" for k in ("snowflakeOrganizationName", "snowflakeAccountName",
                                            "snowflakeAdminUser")}
    others = {k: v for k, v in USER_SECRETS["dev"].items() if k != "snowflakeAdminPrivateKey"}
    config, secret_keys = merge_config("dev", blank, others)
    pulumi.runtime.set_all_config(config, secret_keys)
    with pytest.raises(SettingsError) as caught:
        load_settings(pulumi.Config(PROJECT), "dev")
    problems = caught.value.problems
    assert len(problems) == 4, problems
    for key, command in (
        ("snowflakeOrganizationName", "pulumi config set --stack dev snowflakeOrganizationName"),
        ("snowflakeAccountName", "pulumi config set --stack dev snowflakeAccountName"),
        ("snowflakeAdminUser", "pulumi config set --stack dev snowflakeAdminUser"),
        ("snowflakeAdminPrivateKey",
         "pulumi config set --secret --stack dev snowflakeAdminPrivateKey < admin_key.p8"),
    ):
        assert any(p.startswith(f"{PROJECT}:{key} is not set") and command in p
                   for p in problems), key
    assert all("snowflakeEnabled false" in p for p in problems[:3])


GRANT = f"{SF}grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"


def test_reporting_role_may_use_and_read_ingest_and_nothing_else(run: ProgramRun) -> None:
    """REPORTING: USAGE on the warehouse, database and schema, SELECT on the schema's current
    and future tables; no ownership, no OPERATE, no write."""
    role = run.one(f"{SF}accountRole:AccountRole", "snowflake-reporting-role")
    assert role.get("name") == "REPORTING"
    grants = {g.name.removeprefix("snowflake-reporting-"): g for g in run.of_type(GRANT)
              if g.get("accountRoleName") == "REPORTING"}
    assert {name: sorted(g.get("privileges")) for name, g in grants.items()} == {
        "warehouse-usage": ["USAGE"], "database-usage": ["USAGE"], "schema-usage": ["USAGE"],
        "tables-select": ["SELECT"], "future-tables-select": ["SELECT"]}
    assert grants["warehouse-usage"].get("onAccountObject") == {
        "objectType": "WAREHOUSE", "objectName": "INGEST"}
    assert grants["database-usage"].get("onAccountObject") == {
        "objectType": "DATABASE", "objectName": "INGEST"}
    assert grants["schema-usage"].get("onSchema") == {"schemaName": "INGEST.INGEST"}
    assert grants["tables-select"].get("onSchemaObject") == {
        "all": {"objectTypePlural": "TABLES", "inSchema": "INGEST.INGEST"}}
    assert grants["future-tables-select"].get("onSchemaObject") == {
        "future": {"objectTypePlural": "TABLES", "inSchema": "INGEST.INGEST"}}
    assert not [g for g in run.of_type(OWNERSHIP) if g.get("accountRoleName") == "REPORTING"]
    to_admin = run.one(ROLE_GRANT, "snowflake-reporting-role-to-admin")
    assert (to_admin.get("roleName"), to_admin.get("parentRoleName")) == ("REPORTING",
                                                                          "ACCOUNTADMIN")


def test_reporting_user_is_key_pair_only_with_a_key_of_its_own(run: ProgramRun) -> None:
    user = run.one(USER, "snowflake-reporting-user")
    assert (user.get("name"), user.get("loginName"), user.get("defaultRole"),
            user.get("defaultWarehouse"), user.get("defaultNamespace")) == (
        "REPORTING", "reporting_user", "REPORTING", "INGEST", "INGEST.INGEST")
    assert user.get("defaultSecondaryRolesOption") == "NONE"
    assert "password" not in user.inputs
    ingest = run.one(USER, "snowflake-user")
    assert user.get("rsaPublicKey") != ingest.get("rsaPublicKey")
    assert "rsaPublicKey2" not in user.inputs or user.get("rsaPublicKey2") is None
    grant = run.one(ROLE_GRANT, "snowflake-reporting-role-to-user")
    assert (grant.get("roleName"), grant.get("userName")) == ("REPORTING", "REPORTING")
    # The exported key is the PEM of the key whose public half is in the user's slot.
    pem, secret = run.outputs["snowflakeReportingPrivateKey"]
    assert secret and pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pem_body(public.decode()) == user.get("rsaPublicKey")
    assert run.outputs["snowflakeReportingRole"] == ("REPORTING", False)


def test_reporting_off_declares_no_reporting_role_user_or_key() -> None:
    run = run_program("dev", {f"{PROJECT}:snowflakeReporting": False})
    assert not [r for r in run.resources if "reporting" in r.name]
    assert not [k for k in run.outputs if k.startswith("snowflakeReporting")]
    assert run.one(USER, "snowflake-user")


def test_reporting_keys_rotate_like_the_connectors(tmp_path) -> None:
    """Second slot filled, then active: the user holds both public keys, the output follows
    the active slot; an empty active slot names its setting."""
    both = run_program("dev", {f"{PROJECT}:snowflakeReportingKey2": "generated",
                               f"{PROJECT}:snowflakeReportingActiveKey": 2})
    user = both.one(USER, "snowflake-reporting-user")
    assert user.get("rsaPublicKey") and user.get("rsaPublicKey2")
    key = serialization.load_pem_private_key(
        both.outputs["snowflakeReportingPrivateKey"][0].encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pem_body(public.decode()) == user.get("rsaPublicKey2")
    with pytest.raises(SettingsError, match="snowflakeReportingActiveKey = '2': points at key "
                                            "slot 2, which is none; set snowflakeReportingKey2"):
        run_program("dev", {f"{PROJECT}:snowflakeReportingActiveKey": 2})
