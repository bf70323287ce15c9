"""Lenses 6: HQ (control plane) and an agent (data plane) as containers, or an agent that joins
an existing HQ. Every configuration file is rendered by the program and uploaded."""

from __future__ import annotations

from dataclasses import dataclass

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
from components.kafka import KafkaCluster
from components.postgres import AppDatabases, PostgresServer
from components.render.lenses import (
    AGENT_KEY_ENV,
    AgentConnections,
    DatabaseLogin,
    KafkaConnection,
    render_agent_conf,
    render_hq_config,
    render_provisioning,
)
from components.settings import KafkaSettings, LensesSettings, Mode

__all__ = ["Lenses", "LensesArgs"]

HQ_CONFIG_PATH = "/app/config.yaml"
"""Given to the HQ binary as its only argument, as Lenses' own compose file does."""
AGENT_SETTINGS_DIR = "/mnt/settings"
AGENT_CONF_PATH = f"{AGENT_SETTINGS_DIR}/lenses.conf"
"""Read by every 6.x agent start script; it points provisioning at the file beside it."""
AGENT_PROVISIONING_PATH = f"{AGENT_SETTINGS_DIR}/provisioning.yaml"
AGENT_USER = "65534"
"""The agent drops to nobody:nogroup, which must be able to read its files."""
AGENT_KEY_FILE = "/data/agent-key"
"""The agent keeps the key it registered with, so a restart reuses its HQ environment."""

_SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha256": "SCRAM-SHA-256",
                    "scram-sha512": "SCRAM-SHA-512"}


def _hq_probe(port: int) -> list[str]:
    """HQ's own readiness probe; exec form, as the image may have no shell."""
    return ["CMD", "lenses-hq", "is-up", f"127.0.0.1:{port}"]


def _agent_probe(port: int) -> list[str]:
    return ["CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]


@dataclass(frozen=True)
class LensesArgs:
    settings: LensesSettings
    engine: DockerEngine | None
    defaults: ContainerDefaults
    environment: str
    """Name of this stack's environment in HQ."""
    postgres: PostgresServer
    databases: AppDatabases
    kafka: KafkaCluster
    kafka_settings: KafkaSettings
    """For the agent's SASL credentials to an external cluster."""


class Lenses(pulumi.ComponentResource):
    """Lenses HQ and agent, provisioned with the stack's Kafka, Schema Registry and Connect."""

    url: pulumi.Output[str]
    """HQ web UI and API, from the machine running Pulumi."""
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    """Secret: generated for our own HQ, lensesAdminPassword for an external one."""

    def __init__(
        self, name: str, args: LensesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:lenses:Lenses", name, None, opts)
        s = args.settings
        if s.placement is None or args.engine is None or s.mode is Mode.DISABLED:
            raise ValueError("Lenses needs a Docker engine for its agent and must be enabled")
        engine = args.engine
        engine_host = s.placement.docker_host
        pg = args.postgres.endpoint_for(engine_host)
        sslmode = args.postgres.sslmode

        def login(database: str):
            creds = args.databases.logins[database]
            return creds.password.apply(
                lambda pw: DatabaseLogin(pg.host, pg.port, creds.database, creds.username, pw,
                                         sslmode)
            )

        depends_on = [args.databases]
        agent_envs: list[pulumi.Input[str]] = [f"LENSES_HEAP_OPTS={s.agent_heap_opts}"]
        if s.mode is Mode.CONTAINER:
            password = random.RandomPassword(
                f"{name}-admin-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            license_key = s.license_key or pulumi.Output.from_input("")
            hq_config = pulumi.Output.secret(
                pulumi.Output.all(login("hq"), password.bcrypt_hash, license_key).apply(
                    lambda v: render_hq_config(
                        v[0], s.admin_username, v[1], s.accept_eula, v[2] or None,
                        s.HQ_HTTP_PORT, s.HQ_AGENTS_PORT,
                    )
                )
            )
            hq = run_container(
                self,
                name,
                engine,
                args.defaults,
                ContainerSpec(
                    role="lenses-hq",
                    image=s.hq_image,
                    alias=s.placement.alias,
                    ports=[Port(s.HQ_HTTP_PORT, s.hq_port)],
                    uploads=[
                        docker.ContainerUploadArgs(
                            file=HQ_CONFIG_PATH, content=hq_config, permissions="0600"
                        )
                    ],
                    command=[HQ_CONFIG_PATH],
                    healthcheck=Healthcheck(command=_hq_probe(s.HQ_HTTP_PORT),
                                            start_period="30s"),
                    depends_on=depends_on,
                ),
            )
            depends_on = [args.databases, hq.container]
            hq_host, hq_port, hq_tls = s.placement.alias, s.HQ_AGENTS_PORT, False
            # The agent's start script creates this stack's environment in HQ and exports
            # its agent key (LENSESHQ_AGENT_KEY) for provisioning.yaml.
            agent_envs += [
                f"DEMO_HQ_URL=http://{s.placement.alias}:{s.HQ_HTTP_PORT}",
                f"DEMO_HQ_USER={s.admin_username}",
                pulumi.Output.concat("DEMO_HQ_PASSWORD=", password.result),
                f"DEMO_HQ_ENV_NAME={args.environment}",
                f"DEMO_AGENTKEY_PATH={AGENT_KEY_FILE}",
            ]
            self.url = pulumi.Output.from_input(
                f"http://{engine_host.address}:{s.hq_port}"
            )
            self.admin_password = pulumi.Output.secret(password.result)
        else:
            if s.hq_agents_endpoint is None or s.agent_key is None or s.admin_password is None:
                raise ValueError("external HQ needs lensesHqAgentsAddress, lensesAgentKey and "
                                 "lensesAdminPassword")
            hq_host, hq_port = s.hq_agents_endpoint.host, s.hq_agents_endpoint.port
            hq_tls = s.hq_url.startswith("https://")
            agent_envs.append(pulumi.Output.concat(f"{AGENT_KEY_ENV}=", s.agent_key))
            self.url = pulumi.Output.from_input(s.hq_url)
            self.admin_password = pulumi.Output.secret(s.admin_password)
        self.admin_username = pulumi.Output.from_input(s.admin_username)

        kafka = args.kafka.endpoints_for(engine_host)
        k = args.kafka_settings
        sasl = kafka.security_protocol.startswith("SASL_")
        sasl_password = k.sasl_password if sasl and k.sasl_password else ""
        provisioning = pulumi.Output.secret(
            pulumi.Output.from_input(sasl_password).apply(
                lambda pw: render_provisioning(
                    AgentConnections(
                        hq_host=hq_host,
                        hq_port=hq_port,
                        hq_tls=hq_tls,
                        kafka=KafkaConnection(
                            bootstrap_servers=[
                                f"{kafka.security_protocol}://{server}"
                                for server in kafka.bootstrap_servers
                            ],
                            protocol=kafka.security_protocol,
                            sasl_mechanism=_SASL_MECHANISMS[k.sasl_mechanism] if sasl else None,
                            sasl_username=k.sasl_username if sasl else None,
                            sasl_password=pw if sasl else None,
                        ),
                        schema_registry_urls=[kafka.schema_registry_url],
                        connect_cluster=args.environment,
                        connect_workers=[kafka.connect_url],
                    )
                )
            )
        )
        agent_conf = pulumi.Output.secret(
            login("agent1").apply(
                lambda db: render_agent_conf(db, s.accept_eula, s.HQ_HTTP_PORT,
                                             AGENT_SETTINGS_DIR,
                                             args.kafka_settings.mqtt_source)
            )
        )
        run_container(
            self,
            name,
            engine,
            args.defaults,
            ContainerSpec(
                role="lenses-agent",
                image=s.agent_image,
                alias=s.AGENT_ALIAS,
                envs=agent_envs,
                volumes={"lenses-agent-data": "/data"},
                uploads=[
                    docker.ContainerUploadArgs(
                        file=AGENT_CONF_PATH,
                        content=agent_conf,
                        permissions="0600",
                        owner=AGENT_USER,
                        group=AGENT_USER,
                    ),
                    docker.ContainerUploadArgs(
                        file=AGENT_PROVISIONING_PATH,
                        content=provisioning,
                        permissions="0600",
                        owner=AGENT_USER,
                        group=AGENT_USER,
                    ),
                ],
                healthcheck=Healthcheck(command=_agent_probe(s.HQ_HTTP_PORT),
                                        start_period="60s", retries=30),
                depends_on=depends_on,
            ),
        )
        self.register_outputs(
            {
                "url": self.url,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
            }
        )
