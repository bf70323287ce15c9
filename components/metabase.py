"""Metabase, the dashboards on top of Snowflake, keeping its own application data in Postgres."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pulumi
import pulumi_docker as docker

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
from components.postgres import AppDatabases, PostgresServer
from components.settings import MetabaseSettings, Mode

__all__ = ["APP_DATABASE", "Metabase", "MetabaseArgs", "connection_uri"]

APP_DATABASE = "metabaseappdb"
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

    def __init__(
        self, name: str, args: MetabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:metabase:Metabase", name, None, opts)
        s = args.settings
        self.ca_certificate = pulumi.Output.from_input("")
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
            if s.https:
                front = run_https_front(
                    self, name, args.engine, args.defaults, s.https, role="metabase",
                    service=s.placement, service_port=CONTAINER_PORT, host_port=s.port,
                    depends_on=[service.container])
                self.ca_certificate = front.ca_pem
        self._https = bool(s.https)
        self.register_outputs({"url": self.url, "caCertificate": self.ca_certificate})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        outputs: dict[str, pulumi.Output] = {"metabaseUrl": self.url}
        if self._https:
            outputs["metabaseCaCertificate"] = self.ca_certificate
        return outputs
