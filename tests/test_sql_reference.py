"""sql/postgres/app_databases.sql says what the program declares, statement for statement."""

from __future__ import annotations

import re

from components.postgres import APP_DATABASES, MAINTENANCE_DATABASES
from devtools.harness import ROOT, ProgramRun

SQL = (ROOT / "sql" / "postgres" / "app_databases.sql").read_text()


def test_reference_sql_lists_the_program_databases_and_owners(dev: ProgramRun) -> None:
    in_sql = set(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", SQL))
    declared = {
        (db.get("name"), db.get("owner"))
        for db in dev.of_type("postgresql:index/database:Database")
    }
    assert in_sql == declared == {(a.database, a.role) for a in APP_DATABASES}


def test_reference_sql_roles_have_no_elevated_rights() -> None:
    roles = re.findall(r"CREATE ROLE (\w+) (.*);", SQL)
    assert {name for name, _ in roles} == {a.role for a in APP_DATABASES}
    for name, options in roles:
        for option in ("LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION",
                       "NOBYPASSRLS"):
            assert option in options.split(), f"{name} lacks {option}"


def test_reference_sql_revokes_public_on_every_database() -> None:
    revoked = set(re.findall(r"REVOKE ALL ON DATABASE (\w+) FROM PUBLIC;", SQL))
    assert revoked == {a.database for a in APP_DATABASES}
    maintenance = set(re.findall(r"REVOKE CONNECT ON DATABASE (\w+) FROM PUBLIC;", SQL))
    assert maintenance == set(MAINTENANCE_DATABASES)


SNOWFLAKE_SQL = (ROOT / "sql" / "snowflake" / "setup.sql").read_text()
SF = "snowflake:index/"


def _statement(prefix: str) -> str:
    """The one statement that contains `prefix`, without its comment lines."""
    found = [s for s in SNOWFLAKE_SQL.split(";") if prefix in s]
    assert len(found) == 1, f"{prefix}: {found}"
    return " ".join(line for line in found[0].splitlines() if not line.startswith("--"))


def _properties(statement: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+) = ('[^']*'|\(\)|\w+)", statement))


def _user_properties(user, public_key: str) -> dict[str, str]:
    """What CREATE USER says for this ServiceUser, its key shown as `public_key`."""
    return {
        "TYPE": "SERVICE",
        "LOGIN_NAME": f"'{user.get('loginName')}'",
        "DEFAULT_WAREHOUSE": user.get("defaultWarehouse"),
        "DEFAULT_NAMESPACE": f"'{user.get('defaultNamespace')}'",
        "DEFAULT_ROLE": user.get("defaultRole"),
        "DEFAULT_SECONDARY_ROLES": "()" if user.get("defaultSecondaryRolesOption") == "NONE"
        else "?",
        "RSA_PUBLIC_KEY": public_key,
    }


def test_snowflake_sql_warehouse_matches_the_program(dev: ProgramRun) -> None:
    warehouse = dev.one(f"{SF}warehouse:Warehouse", "snowflake-warehouse")
    props = _properties(_statement("CREATE WAREHOUSE INGEST"))
    assert props == {
        "WAREHOUSE_SIZE": warehouse.get("warehouseSize"),
        "AUTO_SUSPEND": str(int(warehouse.get("autoSuspend"))),
        "AUTO_RESUME": warehouse.get("autoResume").upper(),
        "INITIALLY_SUSPENDED": str(warehouse.get("initiallySuspended")).upper(),
    }


def test_snowflake_sql_grants_match_the_program(dev: ProgramRun) -> None:
    usage = dev.one(f"{SF}grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
                    "snowflake-warehouse-usage")
    privileges = ", ".join(sorted(usage.get("privileges"), reverse=True))
    assert f"GRANT {privileges} ON WAREHOUSE INGEST TO ROLE INGEST;" in SNOWFLAKE_SQL
    to_admin = dev.one(f"{SF}grantAccountRole:GrantAccountRole", "snowflake-role-to-admin")
    assert f"GRANT ROLE INGEST TO ROLE {to_admin.get('parentRoleName')};" in SNOWFLAKE_SQL
    assert "GRANT ROLE INGEST TO USER INGEST;" in SNOWFLAKE_SQL
    for name in ("schema", "database"):
        grant = dev.one(f"{SF}grantOwnership:GrantOwnership", f"snowflake-{name}-ownership")
        on = grant.get("on")
        assert grant.get("outboundPrivileges") == "COPY"
        line = (f"GRANT OWNERSHIP ON {on['objectType']} {on['objectName']} TO ROLE "
                f"{grant.get('accountRoleName')} COPY CURRENT GRANTS;")
        assert line in SNOWFLAKE_SQL, line
    # The ownership order of the program: admin role first, then schema, then database.
    order = [SNOWFLAKE_SQL.index(s) for s in (
        "GRANT ROLE INGEST TO ROLE", "GRANT OWNERSHIP ON SCHEMA", "GRANT OWNERSHIP ON DATABASE")]
    assert order == sorted(order)


def test_snowflake_sql_user_matches_the_program(dev: ProgramRun) -> None:
    user = dev.one(f"{SF}serviceUser:ServiceUser", "snowflake-user")
    props = _properties(_statement("CREATE USER INGEST"))
    assert props == _user_properties(user, "'<public key body>'")
    assert "PASSWORD" not in SNOWFLAKE_SQL
    for obj in ("ROLE INGEST", "DATABASE INGEST", "SCHEMA INGEST.INGEST"):
        assert f"CREATE {obj};" in SNOWFLAKE_SQL


def _grant_line(grant) -> str:
    """The SQL of one GrantPrivilegesToAccountRole, from its inputs."""
    privileges = ", ".join(sorted(grant.get("privileges"), reverse=True))
    role = grant.get("accountRoleName")
    if "onAccountObject" in grant.inputs:
        on = grant.get("onAccountObject")
        target = f"{on['objectType']} {on['objectName']}"
    elif "onSchema" in grant.inputs:
        target = f"SCHEMA {grant.get('onSchema')['schemaName']}"
    else:
        ((scope, on),) = grant.get("onSchemaObject").items()
        target = (f"{'ALL' if scope == 'all' else 'FUTURE'} {on['objectTypePlural']} IN SCHEMA "
                  f"{on['inSchema']}")
    return f"GRANT {privileges} ON {target} TO ROLE {role};"


def test_snowflake_sql_reporting_matches_the_program(dev: ProgramRun) -> None:
    """Every grant to REPORTING, and nothing more, is in the reference SQL; its user too."""
    grants = [g for g in dev.of_type(f"{SF}grantPrivilegesToAccountRole:"
                                     "GrantPrivilegesToAccountRole")
              if g.get("accountRoleName") == "REPORTING"]
    lines = {_grant_line(g) for g in grants}
    assert len(lines) == len(grants) == 5
    assert lines == {line for line in SNOWFLAKE_SQL.splitlines()
                     if line.startswith("GRANT ") and line.endswith("TO ROLE REPORTING;")
                     and " ON " in line}
    to_admin = dev.one(f"{SF}grantAccountRole:GrantAccountRole",
                       "snowflake-reporting-role-to-admin")
    assert f"GRANT ROLE REPORTING TO ROLE {to_admin.get('parentRoleName')};" in SNOWFLAKE_SQL
    assert "GRANT ROLE REPORTING TO USER REPORTING;" in SNOWFLAKE_SQL
    assert "CREATE ROLE REPORTING;" in SNOWFLAKE_SQL
    user = dev.one(f"{SF}serviceUser:ServiceUser", "snowflake-reporting-user")
    assert _properties(_statement("CREATE USER REPORTING")) == _user_properties(
        user, "'<reporting public key body>'")
