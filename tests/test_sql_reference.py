"""sql/postgres/app_databases.sql says what the program declares, statement for statement."""

from __future__ import annotations

import re

from components.postgres import APP_DATABASES
from tests.harness import ROOT, ProgramRun

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
