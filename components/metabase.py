"""Metabase, the dashboards on top of Snowflake, keeping its own application data in Postgres;
given a Snowflake reporting login, also its first-run setup, the Snowflake connection and the
starter dashboard "Patient vitals", configured through its REST API."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.docker_host import (
    ContainerDefaults,
    ContainerSpec,
    DockerEngine,
    Healthcheck,
    Port,
    run_container,
)
from components.guards import unset
from components.https_front import run_https_front, web_url
from components.lenses_resources import DEVICE_VALUE_SCHEMA, device_value_schema
from components.metabase_resources import (
    MetabaseDashboard,
    MetabaseDashboardArgs,
    MetabaseDatabase,
    MetabaseDatabaseArgs,
    MetabaseSetup,
    MetabaseSetupArgs,
)
from components.postgres import AppDatabases, PostgresServer
from components.render.metabase import DASHBOARD_NAME, vital_cards
from components.settings import MetabaseSettings, Mode
from components.snowflake import INGEST, SnowflakeIngest
from components.streams import DERIVED_STREAMS, DerivedStream

__all__ = [
    "APP_DATABASE",
    "CARD_SQL_DIR",
    "DATABASE_NAME",
    "Metabase",
    "MetabaseArgs",
    "MetabaseSnowflakeSource",
    "connection_uri",
    "snowflake_details",
    "starter_cards",
]

APP_DATABASE = "metabaseappdb"
CARD_SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "metabase"
"""The dashboard's question templates: latest_readings.sql and time_series.sql."""
DATABASE_NAME = "Health telemetry (Snowflake)"
"""The Snowflake connection's name in Metabase."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
CONTAINER_PORT = 3000
POSTGRES_CA_PATH = "/app/postgres-ca.pem"
PASSWORD_FILE = "/etc/health-pipeline/metabase-db-password"  # noqa: S105 - a path


def connection_uri(host: str, port: int, database: str, sslmode: str,
                   ca_path: str | None) -> str:
    """MB_DB_CONNECTION_URI: Metabase's only way to give its application database TLS
    settings, which it hands to the PostgreSQL JDBC driver as they are (postgres: becomes
    jdbc:postgresql:). No credentials in it: MB_DB_USER and MB_DB_PASS go beside it (Metabase
    0.43 and later), and a password in the URI would override MB_DB_PASS. Sources: metabase.com
    docs, installation-and-operation/configuring-application-database and databases/
    ssl-certificates; metabase/metabase src/metabase/app_db/data_source.clj."""
    query = {"sslmode": sslmode, **({"sslrootcert": ca_path} if ca_path else {})}
    return f"postgres://{host}:{port}/{quote(database)}?{urlencode(query, safe='/')}"


@dataclass(frozen=True)
class MetabaseSnowflakeSource:
    """The Snowflake login Metabase reads the vital-sign tables as (the REPORTING user), and
    where those tables are."""

    account: pulumi.Input[str]
    """`<org>-<account>`, Snowflake's account identifier (Metabase's `account` detail)."""
    warehouse: str
    """The warehouse Metabase's queries run in (INGEST)."""
    database: str
    """The database the sink loads (INGEST); also the connection's `db`."""
    role: pulumi.Input[str]
    """The role Metabase works as; it must read `schema`'s tables."""
    user: pulumi.Input[str]
    """The login name of the reporting user."""
    private_key_pem: pulumi.Input[str]
    """Secret: that user's private key, an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE
    KEY-----`, as pulumi-tls's private_key_pem_pkcs8), given to Metabase as an uploaded
    RSA private key (PEM); Metabase has no passphrase field for Snowflake keys."""
    schema: str = INGEST
    """The schema the sink writes its tables to; the only one Metabase syncs."""
    after: tuple[pulumi.Resource, ...] = ()
    """What the connection waits for (the reporting user, its role and grants): Metabase
    tests the connection before it saves it."""

    @classmethod
    def of(cls, snowflake: SnowflakeIngest | None) -> MetabaseSnowflakeSource | None:
        """The REPORTING login of the stack's Snowflake objects; None without Snowflake or
        with snowflakeReporting false."""
        if snowflake is None or snowflake.reporting is None:
            return None
        reporting = snowflake.reporting
        return cls(account=snowflake.account, warehouse=INGEST, database=INGEST,
                   role=reporting.role, user=reporting.user,
                   private_key_pem=reporting.private_key_pem, after=reporting.ready)

    def __post_init__(self) -> None:
        for field in ("warehouse", "database", "schema"):
            value = getattr(self, field)
            if not _IDENTIFIER.match(value):
                raise ValueError(f"MetabaseSnowflakeSource.{field} = {value!r}: must be an "
                                 "unquoted Snowflake identifier (letters, digits, _ and $, "
                                 "not starting with a digit)")


def snowflake_details(source: MetabaseSnowflakeSource) -> dict[str, pulumi.Input[str]]:
    """Metabase's Snowflake connection details with key-pair authentication: the private key
    as an uploaded PEM (private-key-value with private-key-options "uploaded"), and only
    `source.schema` synced (schema-filters inclusion). Sources: the Snowflake driver's
    connection properties (metabase/metabase modules/drivers/snowflake/resources/
    metabase-plugin.yaml), secret properties' sub-keys (src/metabase/secrets/models/secret.clj)
    and https://www.metabase.com/docs/latest/databases/connections/snowflake."""
    return {
        "account": source.account,
        "user": source.user,
        "private-key-options": "uploaded",
        "private-key-value": source.private_key_pem,
        "warehouse": source.warehouse,
        "db": source.database,
        "role": source.role,
        "schema-filters-type": "inclusion",
        "schema-filters-patterns": source.schema,
    }


def starter_cards(
    database: str,
    schema: str,
    sql_dir: Path = CARD_SQL_DIR,
    streams: Sequence[DerivedStream] = DERIVED_STREAMS,
    value_schema: Path = DEVICE_VALUE_SCHEMA,
) -> tuple[dict[str, Any], ...]:
    """The questions of "Patient vitals", from the templates in `sql_dir`, read at program
    time so a missing file stops the preview; the Snowflake type of each value comes from
    device_data's Avro schema."""
    templates = []
    for file in ("latest_readings.sql", "time_series.sql"):
        path = sql_dir / file
        try:
            templates.append(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"the dashboard's question template {path} cannot be read: "
                             f"{error.strerror}") from None
    fields = json.loads(device_value_schema(value_schema))["fields"]
    types = {f["name"]: f["type"] for f in fields}
    return vital_cards(templates[0], templates[1], streams, database, schema, types)


@dataclass(frozen=True)
class MetabaseArgs:
    settings: MetabaseSettings
    """The stack's metabase* settings: mode, image, port, HTTPS front, or the external URL."""
    engine: DockerEngine | None
    """None in external mode."""
    defaults: ContainerDefaults
    """Stack-wide container choices (name prefix, publish address, protect)."""
    postgres: PostgresServer | None
    """The server holding Metabase's application database; container mode only."""
    databases: AppDatabases | None
    """The login of that database (metabaseappdb); container mode only."""
    reporting: MetabaseSnowflakeSource | None = None
    """The Snowflake login Metabase reports with; with it, the program sets Metabase up, adds
    the Snowflake connection and (metabaseDashboard) the dashboard "Patient vitals"."""

    def __post_init__(self) -> None:
        if self.settings.mode is Mode.EXTERNAL:
            return
        if self.engine is None or self.settings.placement is None:
            raise ValueError(
                "MetabaseArgs.engine: container mode needs a Docker engine (the one of "
                "metabaseDockerHost, else dockerHost), or set metabaseMode to external")
        missing = [f"MetabaseArgs.{field}"
                   for field in unset(postgres=self.postgres, databases=self.databases)]
        if missing:
            raise ValueError(f"{' and '.join(missing)}: container mode needs its database "
                             f"({APP_DATABASE} on the stack's Postgres)")


class Metabase(pulumi.ComponentResource):
    url: pulumi.Output[str]
    """From the machine running Pulumi (https:// behind the HTTPS front)."""
    ca_certificate: pulumi.Output[str]
    """The CA of the HTTPS front's certificate; empty without one."""
    admin_email: pulumi.Output[str] | None
    """The admin the program sets Metabase up with; None without a reporting login."""
    admin_password: pulumi.Output[str] | None
    """Secret: that admin's password (generated, or metabaseAdminPassword)."""

    def __init__(
        self, name: str, args: MetabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        s = args.settings
        # Read before anything is registered: a missing template registers nothing.
        cards = (starter_cards(args.reporting.database, args.reporting.schema)
                 if args.reporting is not None and s.dashboard else ())
        super().__init__("healthpipe:metabase:Metabase", name, None, opts)
        self.ca_certificate = pulumi.Output.from_input("")
        self.admin_email = self.admin_password = None
        running: list[pulumi.Resource] = []
        if s.mode is Mode.EXTERNAL:
            self.url = pulumi.Output.from_input(s.url)
        else:
            # Checked in MetabaseArgs.__post_init__.
            assert s.placement is not None and args.engine is not None
            assert args.postgres is not None and args.databases is not None
            pg = args.postgres.endpoint_for(s.placement.docker_host)
            login = args.databases.logins[APP_DATABASE]
            ca_pem = args.postgres.ca_pem
            site_url = web_url(s.placement, CONTAINER_PORT, s.port, https=s.https is not None)
            self.url = pulumi.Output.from_input(site_url)
            service = run_container(
                self,
                name,
                args.engine,
                args.defaults,
                ContainerSpec(
                    role="metabase",
                    image=s.image,
                    alias=s.placement.alias,
                    # Behind the HTTPS front Metabase publishes nothing.
                    ports=[] if s.https else [Port(CONTAINER_PORT, s.port)],
                    envs=[
                        # The address users reach it by: Metabase builds its links from it.
                        f"MB_SITE_URL={site_url}",
                        "MB_DB_CONNECTION_URI=" + connection_uri(
                            pg.host, pg.port, login.database, args.postgres.sslmode,
                            POSTGRES_CA_PATH if ca_pem else None),
                        f"MB_DB_USER={login.username}",
                        # Read by the image's run_metabase.sh as root before it drops to the
                        # metabase user (docker_setup_env: MB_DB_PASS_FILE), so the password is
                        # not in the environment `docker inspect` shows.
                        f"MB_DB_PASS_FILE={PASSWORD_FILE}",
                    ],
                    uploads=[
                        docker.ContainerUploadArgs(file=PASSWORD_FILE, content=login.password,
                                                   permissions="0600"),
                        *([docker.ContainerUploadArgs(file=POSTGRES_CA_PATH, content=ca_pem,
                                                      permissions="0644")] if ca_pem else []),
                    ],
                    healthcheck=Healthcheck(
                        command=[
                            "CMD-SHELL",
                            f"curl --fail -sS -I http://127.0.0.1:{CONTAINER_PORT}/api/health",
                        ],
                        interval="10s",
                        retries=30,
                        start_period="60s",
                    ),
                    depends_on=[args.databases],
                ),
            )
            running.append(service.container)
            if s.https:
                front = run_https_front(
                    self, name, args.engine, args.defaults, s.https, role="metabase",
                    service=s.placement, service_port=CONTAINER_PORT, host_port=s.port,
                    depends_on=[service.container])
                self.ca_certificate = front.ca_pem
                running.append(front.container)
        self._https = bool(s.https)
        if args.reporting is not None:
            self._configure(name, s, args.reporting, cards, running)
        outputs = {"url": self.url, "caCertificate": self.ca_certificate}
        if self.admin_email is not None:
            outputs |= {"adminEmail": self.admin_email, "adminPassword": self.admin_password}
        self.register_outputs(outputs)

    def _configure(self, name: str, s: MetabaseSettings, source: MetabaseSnowflakeSource,
                   cards: Sequence[dict[str, Any]], running: list[pulumi.Resource]) -> None:
        """Setup, the Snowflake connection and the dashboard, each through Metabase's API once
        its container is healthy (the engine waits for that before it creates them); an
        external Metabase is waited for by the provider, on /api/health."""
        if s.admin_password is not None:
            password: pulumi.Output[str] = pulumi.Output.secret(s.admin_password)
        else:
            # Metabase's `strong` rule (Metabase Cloud's) at the least: letters of both cases,
            # digits and a special character that needs no escaping in JSON.
            generated = random.RandomPassword(
                f"{name}-admin-password", length=32, special=True, override_special="-_.+=!",
                min_lower=2, min_upper=2, min_numeric=1, min_special=1,
                opts=pulumi.ResourceOptions(parent=self))
            password = pulumi.Output.secret(generated.result)
        self.admin_email = pulumi.Output.from_input(s.admin_email)
        self.admin_password = password
        login: dict[str, Any] = {"url": self.url, "admin_email": s.admin_email,
                                 "admin_password": password, "ca_pem": self.ca_certificate}
        setup = MetabaseSetup(
            f"{name}-setup", MetabaseSetupArgs(**login, site_name=s.site_name),
            pulumi.ResourceOptions(parent=self, depends_on=running))
        database = MetabaseDatabase(
            f"{name}-snowflake",
            MetabaseDatabaseArgs(**login, name=DATABASE_NAME, details=snowflake_details(source)),
            pulumi.ResourceOptions(parent=self, depends_on=[setup, *source.after]))
        if s.dashboard:
            MetabaseDashboard(
                f"{name}-dashboard",
                MetabaseDashboardArgs(
                    **login, database_id=database.database_id, name=DASHBOARD_NAME,
                    description="Latest reading and the last 24 hours of each vital sign, "
                    "per device (managed by Pulumi)",
                    cards=cards),
                pulumi.ResourceOptions(parent=self, depends_on=[database]))

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        outputs: dict[str, pulumi.Output] = {"metabaseUrl": self.url}
        if self._https:
            outputs["metabaseCaCertificate"] = self.ca_certificate
        if self.admin_email is not None and self.admin_password is not None:
            outputs |= {"metabaseAdminEmail": self.admin_email,
                        "metabaseAdminPassword": self.admin_password}
        return outputs
