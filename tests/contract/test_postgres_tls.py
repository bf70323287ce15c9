"""Every Postgres client the program configures, connecting to a real PostgreSQL that takes TCP
clients over TLS only, with exactly the settings the program renders: Metabase's
MB_DB_CONNECTION_URI through the PostgreSQL JDBC driver (as Metabase turns it into a JDBC URL),
the agent's lenses.storage.postgres.* through the same driver, and HQ's database.params through
libpq (the Helm chart documents them as libpq keywords). The CA each container gets is the one
it verifies with; a server the CA did not sign, or a name its certificate does not carry, is
refused where the sslmode says so."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components.postgres import APP_DATABASES
from devtools.certs import TestCa
from devtools.harness import PROJECT, ROOT, USER_SECRETS, ProgramRun, State, run_program, unwrap
from devtools.kafka_servers import KAFKA_LIB
from devtools.servers import Postgres, binary

SQL = (ROOT / "sql" / "postgres" / "app_databases.sql").read_text()
PROBE = ROOT / "tests" / "contract" / "java" / "JdbcProbe.java"
ADMIN_PASSWORD = "contract-admin-password"


@dataclass(frozen=True)
class TlsServer:
    postgres: Postgres
    ca: TestCa
    files: Path
    state: State
    """One state for every program run here: the role passwords stay those the server has."""

    def run(self, host: str, sslmode: str, ca: TestCa | None = None) -> ProgramRun:
        """The dev program with this server as its external Postgres at `host`."""
        overrides = {f"{PROJECT}:postgresMode": "external",
                     f"{PROJECT}:postgresEndpoint": f"postgresql://{host}:{self.postgres.port}",
                     f"{PROJECT}:postgresSslMode": sslmode}
        if sslmode.startswith("verify"):
            ca_file = self.files / f"{(ca or self.ca).certificate.serial_number}-ca.pem"
            ca_file.write_text((ca or self.ca).pem)
            overrides[f"{PROJECT}:postgresCaFile"] = str(ca_file)
        return run_program(
            "dev",
            overrides,
            user_secrets={**USER_SECRETS["dev"], "postgresAdminPassword": ADMIN_PASSWORD},
            state=self.state,
        )


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    ca = TestCa.create("managed Postgres contract CA")
    # The certificate names the server "localhost" only: reaching it as 127.0.0.1 is a name
    # mismatch, which verify-full must refuse and verify-ca accept.
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-postgres-tls-"))
    files = Path(tempfile.mkdtemp(prefix="health-pipeline-postgres-tls-files-"))
    server = TlsServer(Postgres(root, ADMIN_PASSWORD, tls=ca.server("localhost")), ca, files,
                       State())
    server.postgres.start()
    first = server.run("localhost", "verify-full")
    passwords = {r.get("name"): r.get("password")
                 for r in first.of_type("postgresql:index/role:Role")}
    done = server.postgres.psql("postgres", ADMIN_PASSWORD, "postgres", SQL,
                                {f"{role}_password": pw for role, pw in passwords.items()})
    assert done.returncode == 0, done.stderr
    yield server
    server.postgres.stop()
    shutil.rmtree(root)
    shutil.rmtree(files)


def _pgjdbc() -> Path:
    jars = sorted(KAFKA_LIB.glob("postgresql-*.jar"))
    if not jars:
        pytest.skip(f"no PostgreSQL JDBC driver in {KAFKA_LIB.relative_to(ROOT)}; "
                    "scripts/fetch-kafka fetches it with Maven")
    return jars[-1]


def _local_copy(run: ProgramRun, role: str, container_path: str, files: Path) -> Path:
    """The CA bundle as uploaded into the container, at a path on this machine."""
    local = files / f"{role}-{Path(container_path).name}"
    local.write_text(unwrap(run.upload(role, container_path)["content"]))
    return local


def _jdbc(url: str, user: str, password: str, *properties: str) -> str:
    done = subprocess.run(
        [binary("java"), "-cp", str(_pgjdbc()), str(PROBE), url, *properties],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PROBE_USER": user, "PROBE_PASSWORD": password})
    return (done.stdout + done.stderr).strip()


def metabase_connects(run: ProgramRun, files: Path) -> str:
    """Metabase's login, as its app_db data_source.clj makes it: postgres: becomes
    jdbc:postgresql:, the URI's parameters go to the driver unchanged, MB_DB_USER and MB_DB_PASS
    are given beside it."""
    env = dict(unwrap(e).split("=", 1) for e in unwrap(run.container("metabase").get("envs")))
    uri = env["MB_DB_CONNECTION_URI"]
    if "sslrootcert=" in uri:
        container_path = re.search(r"sslrootcert=([^&]+)", uri)[1]
        uri = uri.replace(container_path, str(_local_copy(run, "metabase", container_path, files)))
    url = "jdbc:" + re.sub(r"^postgres:", "postgresql:", uri)
    # run_metabase.sh reads MB_DB_PASS from MB_DB_PASS_FILE before Metabase starts.
    password = unwrap(run.upload("metabase", env["MB_DB_PASS_FILE"])["content"])
    return _jdbc(url, env["MB_DB_USER"], password)


def agent_connects(run: ProgramRun, files: Path) -> str:
    """The agent's login: host, port and database in the JDBC URL, every
    lenses.storage.postgres.properties.* key as a driver property."""
    conf = unwrap(run.upload("lenses-agent", "/mnt/settings/lenses.conf")["content"])
    value = dict(re.findall(r'^lenses\.storage\.postgres\.(\w+) = "?([^"\n]*)"?$', conf, re.M))
    properties = dict(re.findall(r'^lenses\.storage\.postgres\.properties\.(\w+) = "([^"]*)"$',
                                 conf, re.M))
    if "sslrootcert" in properties:
        properties["sslrootcert"] = str(
            _local_copy(run, "lenses-agent", properties["sslrootcert"], files))
    url = f"jdbc:postgresql://{value['host']}:{value['port']}/{value['database']}"
    return _jdbc(url, value["username"], value["password"],
                 *(f"{k}={v}" for k, v in properties.items()))


def hq_connects(run: ProgramRun, server: TlsServer) -> str:
    """HQ's login: database.host, .database, .username, .password and every database.params
    keyword, as a libpq connection string."""
    config = yaml.safe_load(unwrap(run.upload("lenses-hq", "/app/config.yaml")["content"]))
    db = config["database"]
    host, port = db["host"].rsplit(":", 1)
    params = dict(db["params"])
    if "sslrootcert" in params:
        params["sslrootcert"] = str(
            _local_copy(run, "lenses-hq", params["sslrootcert"], server.files))
    conninfo = " ".join(f"{k}={v}" for k, v in {
        "host": host, "port": port, "dbname": db["database"], "user": db["username"],
        "connect_timeout": "10", **params}.items())
    done = server.postgres.psql(db["username"], db["password"], db["database"],
                                "SELECT ssl, version FROM pg_stat_ssl "
                                "WHERE pid = pg_backend_pid();", conninfo=conninfo)
    if done.returncode:
        return f"error: {done.stderr.strip()}"
    ssl, version = done.stdout.strip().split("|")
    return f"ssl={'true' if ssl == 't' else 'false'} version={version}"


CLIENTS = {
    "metabase": lambda run, server: metabase_connects(run, server.files),
    "agent": lambda run, server: agent_connects(run, server.files),
    "hq": hq_connects,
}


@pytest.mark.parametrize("client", CLIENTS)
def test_verify_full_connects_over_tls_with_the_stacks_ca(tls_server, client) -> None:
    run = tls_server.run("localhost", "verify-full")
    answer = CLIENTS[client](run, tls_server)
    assert re.fullmatch(r"ssl=true version=TLSv1\.[23]", answer), answer


@pytest.mark.parametrize("client", CLIENTS)
def test_verify_full_refuses_a_name_the_certificate_does_not_carry(tls_server, client) -> None:
    run = tls_server.run("127.0.0.1", "verify-full")
    answer = CLIENTS[client](run, tls_server)
    assert answer.startswith("error:"), answer
    assert re.search(r"(?i)host ?name|127\.0\.0\.1", answer), answer


@pytest.mark.parametrize("client", CLIENTS)
def test_verify_ca_accepts_the_name_but_not_another_ca(tls_server, client) -> None:
    answer = CLIENTS[client](tls_server.run("127.0.0.1", "verify-ca"), tls_server)
    assert answer.startswith("ssl=true"), answer
    stranger = tls_server.run("localhost", "verify-ca", ca=TestCa.create("someone else's CA"))
    answer = CLIENTS[client](stranger, tls_server)
    assert answer.startswith("error:"), answer
    assert re.search(r"(?i)certif|PKIX|verify", answer), answer


@pytest.mark.parametrize("client", CLIENTS)
def test_require_encrypts_and_the_server_refuses_plain_tcp(tls_server, client) -> None:
    run = tls_server.run("localhost", "require")
    assert CLIENTS[client](run, tls_server).startswith("ssl=true")
    disabled = tls_server.postgres.psql(
        "postgres", ADMIN_PASSWORD, "postgres", "SELECT 1;",
        conninfo=f"host=127.0.0.1 port={tls_server.postgres.port} dbname=postgres "
                 "user=postgres sslmode=disable")
    assert disabled.returncode != 0 and "no encryption" in disabled.stderr, disabled.stderr


@pytest.mark.parametrize("app", APP_DATABASES, ids=lambda a: a.database)
def test_every_application_role_connects_with_verify_full_and_not_with_another_ca(
    tls_server, app
) -> None:
    """Each role the program declares, to its own database, with the stack's CA (libpq)."""
    run = tls_server.run("localhost", "verify-full")
    password = run.one("postgresql:index/role:Role", f"databases-{app.database}-role").get(
        "password")
    stranger = tls_server.files / "stranger-ca.pem"
    stranger.write_text(TestCa.create("another CA").pem)
    for ca_file, works in ((Path(run.one("pulumi:providers:postgresql", "postgres-provider")
                                 .get("sslrootcert")), True), (stranger, False)):
        done = tls_server.postgres.psql(
            app.role, password, app.database, "SELECT ssl FROM pg_stat_ssl "
            "WHERE pid = pg_backend_pid();",
            conninfo=f"host=localhost port={tls_server.postgres.port} dbname={app.database} "
                     f"user={app.role} sslmode=verify-full sslrootcert={ca_file}")
        if works:
            assert done.returncode == 0 and done.stdout.strip() == "t", done.stderr
        else:
            assert done.returncode != 0 and "certificate verify failed" in done.stderr, (
                done.stderr)
