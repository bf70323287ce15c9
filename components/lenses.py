"""Lenses 6: HQ (control plane) and an agent (data plane) as containers, or an agent that joins
an existing HQ. Every configuration file is rendered by the program and uploaded.

Lenses cannot run where this project is tested, so its public documentation is the contract:
docs/lenses.md lists the source of every key rendered here and, in one place, what no source
confirms (the user the HQ image runs as, the agent's `GET /` healthcheck, the field of the agent
key in HQ's answer, ...), so that a user with a live HQ knows what to check first."""

from __future__ import annotations

import base64
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
from components.guards import unset
from components.https_front import run_https_front, web_url
from components.kafka import KafkaCluster
from components.lenses_resources import Environment, EnvironmentArgs
from components.postgres import AppDatabases, PostgresServer
from components.render.lenses import (
    AgentConnections,
    DatabaseConnection,
    HqConnection,
    KafkaConnection,
    render_agent_conf,
    render_hq_config,
    render_provisioning,
)
from components.settings import KafkaSettings, LensesSettings, Mode

__all__ = ["Lenses", "LensesArgs"]

HQ_CONFIG_PATH = "/app/config.yaml"
"""Given to the HQ binary as its only argument, as Lenses' own compose file does."""
HQ_POSTGRES_CA_PATH = "/app/postgres-ca.pem"
AGENT_SETTINGS_DIR = "/mnt/settings"
AGENT_CONF_PATH = f"{AGENT_SETTINGS_DIR}/lenses.conf"
"""Read by every 6.x agent start script; it points provisioning at the file beside it."""
AGENT_PROVISIONING_PATH = f"{AGENT_SETTINGS_DIR}/provisioning.yaml"
AGENT_POSTGRES_CA_PATH = f"{AGENT_SETTINGS_DIR}/postgres-ca.pem"
AGENT_TRUSTSTORE_PATH = f"{AGENT_SETTINGS_DIR}/hq-truststore.jks"
AGENT_USER = "65534"
"""The agent drops to nobody:nogroup, which must be able to read its files."""
AGENT_PORT = 9991
"""The agent's own HTTP port (lenses.port), which its healthcheck probes; it is the same number
as HQ's web port by the images' convention, not by any link between the two."""
AGENT_DATA_DIR = "/data"
"""On the agent's volume."""
AGENT_SQL_STATE_DIR = f"{AGENT_DATA_DIR}/kafka-streams-state"
"""Where IN_PROC processors keep their state: on the volume, so a new container resumes from
it (the image's own default for IN_PROC, set here so it does not depend on the image)."""

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
    """The stack's lenses* settings: mode, images, ports, HTTPS front, or the external HQ."""
    engine: DockerEngine | None
    """The engine the agent (and in container mode HQ) runs on; required."""
    defaults: ContainerDefaults
    """Stack-wide container choices (name prefix, publish address, protect)."""
    environment: str
    """Name of this stack's environment in HQ."""
    postgres: PostgresServer
    """The server holding HQ's and the agent's databases."""
    databases: AppDatabases
    """The logins of the `hq` and `agent1` databases."""
    kafka: KafkaCluster
    """The cluster, Schema Registry and Connect the agent is provisioned with."""
    kafka_settings: KafkaSettings
    """For the agent's SASL credentials to an external cluster."""

    def __post_init__(self) -> None:
        s = self.settings
        if s.mode is Mode.DISABLED:
            raise ValueError("LensesArgs.settings: lensesMode is disabled, so there is no "
                             "Lenses to build")
        if self.engine is None or s.placement is None:
            raise ValueError(
                "LensesArgs.engine: Lenses needs a Docker engine for its agent (the one of "
                "lensesDockerHost, else dockerHost)")
        if s.mode is Mode.EXTERNAL:
            missing = unset(lensesHqAgentsAddress=s.hq_agents_endpoint,
                            lensesAgentKey=s.agent_key, lensesAdminPassword=s.admin_password)
            if missing:
                raise ValueError(
                    "LensesArgs.settings: external HQ needs lensesHqAgentsAddress, "
                    f"lensesAgentKey and lensesAdminPassword; set {' and '.join(missing)}")


class Lenses(pulumi.ComponentResource):
    """Lenses HQ and agent, provisioned with the stack's Kafka, Schema Registry and Connect."""

    url: pulumi.Output[str]
    """HQ web UI and API, from the machine running Pulumi (https:// behind the HTTPS
    front)."""
    ca_certificate: pulumi.Output[str]
    """The CA of the HTTPS front's certificate; empty without one."""
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    """Secret: generated for our own HQ, lensesAdminPassword for an external one."""

    def __init__(
        self, name: str, args: LensesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:lenses:Lenses", name, None, opts)
        s = args.settings
        # Checked in LensesArgs.__post_init__.
        assert s.placement is not None and args.engine is not None
        engine = args.engine
        engine_host = s.placement.docker_host
        pg = args.postgres.endpoint_for(engine_host)
        ca_pem = args.postgres.ca_pem

        def login(database: str, ca_path: str):
            creds = args.databases.logins[database]
            return creds.password.apply(
                lambda pw: DatabaseConnection(pg.host, pg.port, creds.database, creds.username,
                                              pw, args.postgres.sslmode,
                                              ca_path if ca_pem else None)
            )

        def ca_upload(path: str, **owner: str) -> list[docker.ContainerUploadArgs]:
            """The Postgres CA bundle, readable by the container's user (it is public)."""
            if not ca_pem:
                return []
            return [docker.ContainerUploadArgs(file=path, content=ca_pem, permissions="0644",
                                               **owner)]

        depends_on: list[pulumi.Resource] = [args.databases]
        self.ca_certificate = pulumi.Output.from_input("")
        if s.mode is Mode.CONTAINER:
            password = random.RandomPassword(
                f"{name}-admin-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            license_key = s.license_key or pulumi.Output.from_input("")
            hq_config = pulumi.Output.secret(
                pulumi.Output.all(login("hq", HQ_POSTGRES_CA_PATH), password.bcrypt_hash,
                                  license_key).apply(
                    lambda v: render_hq_config(
                        v[0], s.admin_username, v[1], s.accept_eula, v[2] or None,
                        s.HQ_HTTP_PORT, s.HQ_AGENTS_PORT, secure_cookies=s.https is not None,
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
                    # Behind the HTTPS front HQ publishes nothing.
                    ports=[] if s.https else [Port(s.HQ_HTTP_PORT, s.hq_port)],
                    uploads=[
                        docker.ContainerUploadArgs(
                            file=HQ_CONFIG_PATH, content=hq_config, permissions="0600"
                        ),
                        *ca_upload(HQ_POSTGRES_CA_PATH),
                    ],
                    command=[HQ_CONFIG_PATH],
                    healthcheck=Healthcheck(command=_hq_probe(s.HQ_HTTP_PORT),
                                            start_period="30s"),
                    depends_on=depends_on,
                ),
            )
            if s.https:
                front = run_https_front(
                    self, name, engine, args.defaults, s.https, role="lenses-hq",
                    service=s.placement, service_port=s.HQ_HTTP_PORT, host_port=s.hq_port,
                    depends_on=[hq.container])
                self.url = pulumi.Output.from_input(front.url)
                self.ca_certificate = front.ca_pem
                hq_ready: list[pulumi.Resource] = [hq.container, front.container]
            else:
                self.url = pulumi.Output.from_input(
                    web_url(s.placement, s.HQ_HTTP_PORT, s.hq_port, https=False))
                hq_ready = [hq.container]
            self.admin_password = pulumi.Output.secret(password.result)
            # The environment is made through HQ's API, as an administrator, once HQ is
            # healthy; the agent gets only its key (never an HQ login: the image's DEMO_HQ_*
            # self-registration is printed by the image itself as meant only for demos).
            environment = Environment(
                f"{name}-environment",
                EnvironmentArgs(hq_url=self.url, username=s.admin_username,
                                password=self.admin_password, name=args.environment,
                                tier=s.environment_tier, hq_ca_pem=self.ca_certificate),
                pulumi.ResourceOptions(parent=self, depends_on=hq_ready,
                                       protect=args.defaults.protect),
            )
            depends_on = [args.databases, hq.container, environment]
            # The agent runs on HQ's engine and HQ publishes no agents port: always its alias.
            hq_link = environment.agent_key.apply(
                lambda key: HqConnection(s.placement.alias, s.HQ_AGENTS_PORT, key))
        else:
            assert s.hq_agents_endpoint is not None and s.agent_key is not None
            assert s.admin_password is not None
            endpoint = s.hq_agents_endpoint
            truststore_password = s.hq_agents_truststore_password or pulumi.Output.from_input("")
            hq_link = pulumi.Output.all(s.agent_key, truststore_password).apply(
                lambda v: HqConnection(
                    endpoint.host, endpoint.port, v[0], tls=s.hq_agents_tls,
                    truststore_path=AGENT_TRUSTSTORE_PATH if s.hq_agents_truststore else None,
                    truststore_password=v[1] or None,
                ))
            self.url = pulumi.Output.from_input(s.hq_url)
            self.admin_password = pulumi.Output.secret(s.admin_password)
        self.admin_username = pulumi.Output.from_input(s.admin_username)

        kafka = args.kafka.endpoints_for(engine_host)
        k = args.kafka_settings
        sasl = kafka.security_protocol.startswith("SASL_")
        sasl_password = k.sasl_password if sasl and k.sasl_password else ""
        provisioning = pulumi.Output.secret(
            pulumi.Output.all(hq_link, sasl_password).apply(
                lambda v: render_provisioning(
                    AgentConnections(
                        hq=v[0],
                        kafka=KafkaConnection(
                            bootstrap_servers=[
                                f"{kafka.security_protocol}://{server}"
                                for server in kafka.bootstrap_servers
                            ],
                            protocol=kafka.security_protocol,
                            sasl_mechanism=_SASL_MECHANISMS[k.sasl_mechanism] if sasl else None,
                            sasl_username=k.sasl_username if sasl else None,
                            sasl_password=v[1] if sasl else None,
                        ),
                        schema_registry_urls=[kafka.schema_registry_url],
                        connect_cluster=args.environment,
                        connect_workers=[kafka.connect_url],
                    )
                )
            )
        )
        agent_conf = pulumi.Output.secret(
            login("agent1", AGENT_POSTGRES_CA_PATH).apply(
                lambda db: render_agent_conf(db, s.accept_eula, AGENT_PORT,
                                             AGENT_SETTINGS_DIR, AGENT_SQL_STATE_DIR,
                                             args.kafka_settings.mqtt_source)
            )
        )
        agent_files = {"owner": AGENT_USER, "group": AGENT_USER}
        uploads = [
            docker.ContainerUploadArgs(file=AGENT_CONF_PATH, content=agent_conf,
                                       permissions="0600", **agent_files),
            docker.ContainerUploadArgs(file=AGENT_PROVISIONING_PATH, content=provisioning,
                                       permissions="0600", **agent_files),
            *ca_upload(AGENT_POSTGRES_CA_PATH, **agent_files),
        ]
        if s.mode is Mode.EXTERNAL and s.hq_agents_truststore:
            uploads.append(docker.ContainerUploadArgs(
                file=AGENT_TRUSTSTORE_PATH,
                content_base64=base64.b64encode(s.hq_agents_truststore).decode(),
                permissions="0600", **agent_files))
        run_container(
            self,
            name,
            engine,
            args.defaults,
            ContainerSpec(
                role="lenses-agent",
                image=s.agent_image,
                alias=s.AGENT_ALIAS,
                envs=[f"LENSES_HEAP_OPTS={s.agent_heap_opts}"],
                volumes={"lenses-agent-data": AGENT_DATA_DIR},
                uploads=uploads,
                healthcheck=Healthcheck(command=_agent_probe(AGENT_PORT),
                                        start_period="60s", retries=30),
                depends_on=depends_on,
            ),
        )
        self._settings = s
        self.register_outputs(
            {
                "url": self.url,
                "caCertificate": self.ca_certificate,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
            }
        )

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        """HQ's address, the CA of its HTTPS front, and the administrator of our own HQ (an
        external HQ manages its own)."""
        outputs: dict[str, pulumi.Output] = {"lensesUrl": self.url}
        if self._settings.https:
            outputs["lensesCaCertificate"] = self.ca_certificate
        if self._settings.mode is Mode.CONTAINER:
            outputs["lensesAdminUsername"] = self.admin_username
            outputs["lensesAdminPassword"] = self.admin_password
        return outputs
