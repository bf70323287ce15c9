"""Metabase, the dashboards on top of Snowflake, keeping its own application data in Postgres."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.docker_host import (
    ContainerDefaults,
    ContainerSpec,
    DockerEngine,
    Healthcheck,
    Port,
    run_container,
)
from components.postgres import AppDatabases, PostgresServer
from components.settings import MetabaseSettings, Mode

__all__ = ["APP_DATABASE", "Metabase", "MetabaseArgs"]

APP_DATABASE = "metabaseappdb"
CONTAINER_PORT = 3000


@dataclass(frozen=True)
class MetabaseArgs:
    settings: MetabaseSettings
    engine: DockerEngine | None
    """None in external mode."""
    defaults: ContainerDefaults
    postgres: PostgresServer | None
    databases: AppDatabases | None


class Metabase(pulumi.ComponentResource):
    url: pulumi.Output[str]
    """From the machine running Pulumi."""

    def __init__(
        self, name: str, args: MetabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:metabase:Metabase", name, None, opts)
        s = args.settings
        if s.mode is Mode.EXTERNAL:
            self.url = pulumi.Output.from_input(s.url)
        else:
            if (
                s.placement is None
                or args.engine is None
                or args.postgres is None
                or args.databases is None
            ):
                raise ValueError("container mode needs a Docker engine and its database")
            pg = args.postgres.endpoint_for(s.placement.docker_host)
            login = args.databases.logins[APP_DATABASE]
            run_container(
                self,
                name,
                args.engine,
                args.defaults,
                ContainerSpec(
                    role="metabase",
                    image=s.image,
                    alias=s.placement.alias,
                    ports=[Port(CONTAINER_PORT, s.port)],
                    envs=[
                        "MB_DB_TYPE=postgres",
                        f"MB_DB_DBNAME={login.database}",
                        f"MB_DB_HOST={pg.host}",
                        f"MB_DB_PORT={pg.port}",
                        f"MB_DB_USER={login.username}",
                        pulumi.Output.concat("MB_DB_PASS=", login.password),
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
            self.url = pulumi.Output.from_input(
                f"http://{s.placement.docker_host.address}:{s.port}"
            )
        self.register_outputs({"url": self.url})
