"""A real PostgreSQL with the databases and roles as the program declares them, created by
sql/postgres/app_databases.sql (the statements the postgresql provider issues)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from components.postgres import APP_DATABASES, MAINTENANCE_DATABASES
from devtools.harness import ROOT, ProgramRun
from devtools.servers import Postgres

SQL = (ROOT / "sql" / "postgres" / "app_databases.sql").read_text()


def _role_passwords(run: ProgramRun) -> dict[str, str]:
    return {r.get("name"): r.get("password") for r in run.of_type("postgresql:index/role:Role")}


@pytest.fixture(scope="module")
def postgres_server(runs):
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-postgres-"))
    server = Postgres(root, admin_password=runs["dev"].outputs["postgresAdminPassword"][0])
    server.start()
    passwords = _role_passwords(runs["dev"])
    done = server.psql("postgres", server.admin_password, "postgres", SQL,
                       {f"{role}_password": pw for role, pw in passwords.items()})
    assert done.returncode == 0, done.stderr
    yield server
    server.stop()
    shutil.rmtree(root)


@pytest.mark.parametrize("app", APP_DATABASES, ids=lambda a: a.database)
def test_each_role_connects_to_its_own_database_and_creates_objects(
    dev, postgres_server, app
) -> None:
    password = _role_passwords(dev)[app.role]
    done = postgres_server.psql(
        app.role, password, app.database,
        "CREATE TABLE contract_probe (id int); INSERT INTO contract_probe VALUES (1);"
        "SELECT count(*) FROM contract_probe; DROP TABLE contract_probe;",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


@pytest.mark.parametrize("app", APP_DATABASES, ids=lambda a: a.database)
def test_each_role_is_refused_on_every_other_database(dev, postgres_server, app) -> None:
    """Other applications' databases, and the server's maintenance databases (postgres,
    template1), which PUBLIC could otherwise connect to."""
    password = _role_passwords(dev)[app.role]
    others = [o.database for o in APP_DATABASES if o is not app]
    for other in (*others, *MAINTENANCE_DATABASES):
        done = postgres_server.psql(app.role, password, other, "SELECT 1;")
        assert done.returncode != 0, f"{app.role} reached {other}"
        assert "permission denied for database" in done.stderr, done.stderr


def test_no_application_role_is_superuser_or_may_create_roles_or_databases(
    dev, postgres_server
) -> None:
    roles = ",".join(f"'{a.role}'" for a in APP_DATABASES)
    done = postgres_server.psql(
        "postgres", postgres_server.admin_password, "postgres",
        f"SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
        f"rolcanlogin FROM pg_roles WHERE rolname IN ({roles}) ORDER BY rolname;",
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.split()]
    assert sorted(r[0] for r in rows) == sorted(a.role for a in APP_DATABASES)
    for name, superuser, createdb, createrole, replication, bypassrls, login in rows:
        assert (superuser, createdb, createrole, replication, bypassrls) == ("f",) * 5, name
        assert login == "t", name


def test_a_wrong_password_is_refused(dev, postgres_server) -> None:
    done = postgres_server.psql("metabase", "wrong", "metabaseappdb", "SELECT 1;")
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr
