"""Postgres for Lenses HQ, the Lenses agents and Metabase: the server (a container or a managed
service), its explicit admin provider, and one database per application owned by its own role."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql
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
from components.settings import DockerHost, Endpoint, Mode, PostgresSettings

__all__ = [
    "APP_DATABASES",
    "MAINTENANCE_DATABASES",
    "AppDatabase",
    "AppDatabases",
    "AppDatabasesArgs",
    "DatabaseLogin",
    "PostgresServer",
    "PostgresServerArgs",
]

CONTAINER_PORT = 5432
PASSWORD_FILE = "/etc/health-pipeline/postgres-password"  # noqa: S105 - a path


@dataclass(frozen=True)
class AppDatabase:
    database: str
    role: str
    """Login role that owns the database; no other application role may connect to it."""


APP_DATABASES = (
    AppDatabase("hq", "lenses_hq"),
    AppDatabase("agent1", "lenses_agent1"),
    AppDatabase("agent2", "lenses_agent2"),
    AppDatabase("metabaseappdb", "metabase"),
)


@dataclass(frozen=True)
class PostgresServerArgs:
    settings: PostgresSettings
    """The stack's postgres* settings: mode, image, port, TLS, or the managed server."""
    engine: DockerEngine | None
    """The engine Postgres runs on; None in external mode."""
    defaults: ContainerDefaults
    """Stack-wide container choices (name prefix, publish address, protect)."""

    def __post_init__(self) -> None:
        s = self.settings
        if s.mode is Mode.EXTERNAL:
            missing = unset(postgresEndpoint=s.endpoint,
                            postgresAdminPassword=s.admin_password)
            if missing:
                raise ValueError("PostgresServerArgs.settings: external Postgres needs "
                                 f"{' and '.join(missing)}")
        elif self.engine is None or s.placement is None:
            raise ValueError(
                "PostgresServerArgs.engine: container mode needs a Docker engine (the one of "
                "postgresDockerHost, else dockerHost), or set postgresMode to external")


class PostgresServer(pulumi.ComponentResource):
    """The server and an admin provider that only connects once it is healthy."""

    provider: postgresql.Provider
    """Explicit admin provider for databases and roles."""
    host: pulumi.Output[str]
    """From the machine running Pulumi."""
    port: pulumi.Output[int]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    """Secret."""

    def __init__(
        self, name: str, args: PostgresServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:postgres:PostgresServer", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        depends: list[pulumi.Resource] = []
        if s.mode is Mode.EXTERNAL:
            # Checked in PostgresServerArgs.__post_init__.
            assert s.endpoint is not None and s.admin_password is not None
            endpoint = s.endpoint
            password = pulumi.Output.secret(s.admin_password)
        else:
            assert args.engine is not None and s.placement is not None
            password = random.RandomPassword(
                f"{name}-admin-password", length=32, special=False, opts=child
            ).result
            server = run_container(
                self,
                name,
                args.engine,
                args.defaults,
                ContainerSpec(
                    role="postgres",
                    image=s.image,
                    alias=s.placement.alias,
                    ports=[Port(CONTAINER_PORT, s.port)],
                    # The password from a file, not the environment `docker inspect` shows: the
                    # image's entrypoint reads POSTGRES_PASSWORD_FILE as root (the postgres
                    # image's docs, "Docker Secrets").
                    envs=[
                        f"POSTGRES_USER={s.admin_username}",
                        f"POSTGRES_PASSWORD_FILE={PASSWORD_FILE}",
                        "POSTGRES_DB=postgres",
                    ],
                    uploads=[docker.ContainerUploadArgs(file=PASSWORD_FILE, content=password,
                                                        permissions="0600")],
                    volumes={"postgres-data": "/var/lib/postgresql/data"},
                    # TCP, not the socket: during initdb the temporary server listens on the
                    # socket only, and must not count as healthy.
                    healthcheck=Healthcheck(
                        command=[
                            "CMD",
                            "pg_isready",
                            "-h",
                            "127.0.0.1",
                            "-U",
                            s.admin_username,
                            "-d",
                            "postgres",
                        ],
                        interval="2s",
                        retries=30,
                    ),
                ),
            )
            depends.append(server.container)
            # The machine running Pulumi is in no Docker engine of the stack.
            endpoint = s.placement.reached_from(None, CONTAINER_PORT, s.port)
        self.host = pulumi.Output.from_input(endpoint.host)
        self.port = pulumi.Output.from_input(endpoint.port)
        self.admin_username = pulumi.Output.from_input(s.admin_username)
        self.admin_password = pulumi.Output.secret(password)
        self.provider = postgresql.Provider(
            f"{name}-provider",
            host=endpoint.host,
            port=endpoint.port,
            username=s.admin_username,
            password=self.admin_password,
            database="postgres",
            sslmode=s.sslmode,
            sslrootcert=str(s.ca.path) if s.ca else None,
            superuser=s.superuser,
            connect_timeout=30,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self._settings = s
        self._endpoint = endpoint
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
            }
        )


    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"postgresHost": self.host, "postgresPort": self.port,
                "postgresAdminUsername": self.admin_username,
                "postgresAdminPassword": self.admin_password}

    def endpoint_for(self, consumer: DockerHost) -> Endpoint:
        """Where a container on `consumer` reaches the server: by alias on the same engine,
        otherwise at the published port (or the managed endpoint)."""
        placement = self._settings.placement
        if placement is None:
            return self._endpoint
        return placement.reached_from(consumer, CONTAINER_PORT, self._settings.port)

    @property
    def sslmode(self) -> str:
        return self._settings.sslmode

    @property
    def ca_pem(self) -> str | None:
        """The CA bundle clients verify the server with (verify-ca, verify-full), as PEM."""
        return self._settings.ca.pem if self._settings.ca else None


@dataclass(frozen=True)
class DatabaseLogin:
    """How an application logs in to its own database."""

    database: str
    username: str
    password: pulumi.Output[str]
    """Secret."""


MAINTENANCE_DATABASES = ("postgres", "template1")
"""Databases every server has, which PUBLIC may connect to unless revoked."""


@dataclass(frozen=True)
class AppDatabasesArgs:
    provider: postgresql.Provider
    """The server's admin provider (PostgresServer.provider)."""
    protect: bool
    """Protect the databases and roles from deletion (protectStatefulResources)."""
    databases: tuple[AppDatabase, ...] = APP_DATABASES
    """One database and login role per application."""
    own_server: bool = False
    """The server is this stack's container: PUBLIC also loses CONNECT on the maintenance
    databases, so an application role reaches nothing but its own database. A managed
    server's are its administrator's to change (docs/components.md, AppDatabases)."""


class AppDatabases(pulumi.ComponentResource):
    """One database per application, owned by a login role of its own; PUBLIC loses CONNECT,
    so no application role can connect to another application's database."""

    logins: dict[str, DatabaseLogin]
    """By database name."""

    def __init__(
        self, name: str, args: AppDatabasesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:postgres:AppDatabases", name, None, opts)
        on_server = pulumi.ResourceOptions(
            parent=self, provider=args.provider, protect=args.protect
        )
        self.logins = {}
        for maintenance in MAINTENANCE_DATABASES if args.own_server else ():
            postgresql.Grant(
                f"{name}-{maintenance}-revoke-public",
                database=maintenance,
                role="public",
                object_type="database",
                privileges=[],
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
        for app in args.databases:
            password = random.RandomPassword(
                f"{name}-{app.database}-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            role = postgresql.Role(
                f"{name}-{app.database}-role",
                name=app.role,
                login=True,
                password=password.result,
                superuser=False,
                create_database=False,
                create_role=False,
                replication=False,
                bypass_row_level_security=False,
                inherit=True,
                opts=on_server,
            )
            database = postgresql.Database(
                f"{name}-{app.database}",
                name=app.database,
                owner=role.name,
                encoding="UTF8",
                opts=on_server,
            )
            postgresql.Grant(
                f"{name}-{app.database}-revoke-public",
                database=database.name,
                role="public",
                object_type="database",
                privileges=[],
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
            self.logins[app.database] = DatabaseLogin(
                app.database, app.role, pulumi.Output.secret(password.result)
            )
        outputs: dict[str, object] = {}
        for db, login in self.logins.items():
            outputs[f"{db}Username"] = login.username
            outputs[f"{db}Password"] = login.password
        self.register_outputs(outputs)
