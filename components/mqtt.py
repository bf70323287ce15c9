"""The MQTT broker devices publish to: Mosquitto with password file and ACL, or an existing
broker reached at a URL."""

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
from components.guards import unset
from components.mqtt_urls import MQTT_PORT, MQTTS_PORT, WS_PORT, WSS_PORT
from components.render.mosquitto import (
    UPTIME_TOPIC,
    MosquittoLayout,
    MqttUser,
    render_acl,
    render_client_options,
    render_conf,
    render_password_file,
)
from components.settings import (
    ContainerPlacement,
    DockerHost,
    Mode,
    MqttSettings,
    MqttSource,
    Settings,
)
from components.tls import generate_client_tls, generate_server_tls

__all__ = ["HEALTH_USERNAME", "MQTT_SOURCE_TLS_DIR", "MqttBroker", "MqttBrokerArgs",
           "container_layout"]

BROKER_PORT, WEBSOCKET_PORT = MQTT_PORT, WS_PORT
TLS_PORT, SECURE_WEBSOCKET_PORT = MQTTS_PORT, WSS_PORT
LOOPBACK = "127.0.0.1"
HEALTH_USERNAME = "healthcheck"
"""Broker user of the container healthcheck; it may only read the broker's uptime."""
MQTT_SOURCE_TLS_DIR = "/connectors/mqtt-tls"
"""Where fast-data-dev's Connect worker finds Stream Reactor's TLS files."""
HEALTH_CONFIG_HOME = "/mosquitto/health"
"""XDG_CONFIG_HOME of the healthcheck: mosquitto_sub reads its login from the file there."""


def container_layout(plaintext: bool) -> MosquittoLayout:
    """The broker's listeners inside its container: TLS always, plain ones for development."""
    return MosquittoLayout(
        port=BROKER_PORT if plaintext else None,
        websocket_port=WEBSOCKET_PORT if plaintext else None,
        tls_port=TLS_PORT,
        secure_websocket_port=SECURE_WEBSOCKET_PORT,
    )


def health_probe(layout: MosquittoLayout) -> list[str]:
    """Reads the broker's uptime over TLS as the healthcheck user, whose login is in a 0600
    file (no password on the command line, visible to `docker inspect`). It trusts the
    broker's CA; the name is not checked (a brought certificate need not name 127.0.0.1)."""
    return ["CMD-SHELL",
            f"XDG_CONFIG_HOME={HEALTH_CONFIG_HOME} mosquitto_sub -q 0 -C 1 -W 5 "
            f"-h {LOOPBACK} -p {layout.tls_port} --cafile {layout.ca_file} --insecure "
            f"-t '{UPTIME_TOPIC}' > /dev/null"]


@dataclass(frozen=True)
class MqttBrokerArgs:
    settings: MqttSettings
    """The stack's mqtt* settings: mode, image, ports, TLS, or the external broker."""
    engine: DockerEngine | None
    """The engine the broker runs on; None in external mode."""
    defaults: ContainerDefaults
    """Stack-wide container choices (name prefix, publish address, protect)."""
    connector_client_certificate: bool = False
    """Make a client certificate for the MQTT source (Stream Reactor's insists on one; the
    broker never asks for it)."""
    export_connector_tls: bool = False
    """Export it too, for an operator to place on external Connect workers."""

    def __post_init__(self) -> None:
        s = self.settings
        if s.mode is Mode.EXTERNAL:
            missing = unset(mqttDevicePassword=s.device_password,
                            mqttConnectorPassword=s.connector_password)
            if missing:
                raise ValueError(
                    "MqttBrokerArgs.settings: an external broker needs both MQTT passwords; "
                    f"set {' and '.join(missing)} (pulumi config set --secret)")
        elif self.engine is None or s.placement is None:
            raise ValueError(
                "MqttBrokerArgs.engine: container mode needs a Docker engine (the one of "
                "mqttDockerHost, else dockerHost), or set mqttMode to external")
        else:
            logins = {"mqttDeviceUsername": s.device_username,
                      "mqttConnectorUsername": s.connector_username,
                      "mqttMonitorUsername": s.monitor_username}
            for key, username in logins.items():
                if username == HEALTH_USERNAME:
                    raise ValueError(
                        f"MqttBrokerArgs.settings: {key} '{username}' is the broker "
                        "healthcheck's own user (it may only read the uptime); choose another")

    @classmethod
    def for_stack(cls, settings: Settings, engine: DockerEngine | None,
                  defaults: ContainerDefaults) -> MqttBrokerArgs:
        stream_reactor = settings.kafka.mqtt_source is MqttSource.STREAM_REACTOR
        return cls(settings.mqtt, engine, defaults, connector_client_certificate=stream_reactor,
                   export_connector_tls=settings.kafka.mode is Mode.EXTERNAL)


class MqttBroker(pulumi.ComponentResource):
    """Mosquitto with authentication and ACLs (container mode), or an existing broker."""

    url: pulumi.Output[str]
    """Broker URL for devices and the simulator, from the machine running Pulumi: TLS
    (ssl://) for our own broker."""
    websocket_url: pulumi.Output[str]
    """MQTT over secure websockets (wss://), from the machine running Pulumi (container
    mode)."""
    ca_certificate: pulumi.Output[str]
    """The CA devices trust for our own broker (PEM); empty for an external one."""
    device_username: pulumi.Output[str]
    device_password: pulumi.Output[str]
    """Secret."""
    connector_username: pulumi.Output[str]
    connector_password: pulumi.Output[str]
    """Secret."""
    monitor_username: pulumi.Output[str] | None
    """Who may watch the flow: subscribe to health/# only, never publish. None for an
    external broker, whose users the program does not declare."""
    monitor_password: pulumi.Output[str] | None
    """Secret."""

    def __init__(
        self, name: str, args: MqttBrokerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:mqtt:MqttBroker", name, None, opts)
        s = args.settings
        self._settings = s
        self._export_connector_tls = args.export_connector_tls
        self.device_username = pulumi.Output.from_input(s.device_username)
        self.connector_username = pulumi.Output.from_input(s.connector_username)
        self.monitor_username = self.monitor_password = None
        if s.mode is Mode.EXTERNAL:
            # Checked in MqttBrokerArgs.__post_init__.
            assert s.device_password is not None and s.connector_password is not None
            self.url = pulumi.Output.from_input(s.endpoint)
            self.websocket_url = pulumi.Output.from_input("")
            self.ca_certificate = pulumi.Output.from_input("")
            self.device_password = pulumi.Output.secret(s.device_password)
            self.connector_password = pulumi.Output.secret(s.connector_password)
        else:
            assert args.engine is not None and s.placement is not None
            self._run(name, s, s.placement, args.engine, args.defaults)
        self.connector_tls = (generate_client_tls(f"{name}-connector-tls", self,
                                                  "health-pipeline MQTT source")
                              if args.connector_client_certificate and s.placement else None)
        monitor = ({"monitorUsername": self.monitor_username,
                    "monitorPassword": self.monitor_password}
                   if self.monitor_password is not None else {})
        self.register_outputs(
            {
                "url": self.url,
                "websocketUrl": self.websocket_url,
                "caCertificate": self.ca_certificate,
                "deviceUsername": self.device_username,
                "devicePassword": self.device_password,
                "connectorUsername": self.connector_username,
                "connectorPassword": self.connector_password,
                **monitor,
            }
        )

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        """The broker's stack outputs: where devices connect, as whom, and what they trust;
        the monitor user's login for watching the flow (our own broker); the connector's
        client certificate where an operator must place it (external Connect)."""
        outputs: dict[str, pulumi.Output] = {
            "mqttUrl": self.url,
            "mqttWebsocketUrl": self.websocket_url,
            "mqttDeviceUsername": self.device_username,
            "mqttDevicePassword": self.device_password,
            "mqttConnectorUsername": self.connector_username,
            "mqttConnectorPassword": self.connector_password,
        }
        if self._settings.mode is Mode.CONTAINER:
            outputs["mqttCaCertificate"] = self.ca_certificate
        if self.monitor_username is not None and self.monitor_password is not None:
            outputs["mqttMonitorUsername"] = self.monitor_username
            outputs["mqttMonitorPassword"] = self.monitor_password
        if self.connector_tls and self._export_connector_tls:
            outputs["mqttConnectorCertificate"] = self.connector_tls.certificate_pem
            outputs["mqttConnectorKey"] = self.connector_tls.private_key_pem
        return outputs

    def connector_tls_files(self, directory: str) -> list[docker.ContainerUploadArgs]:
        """The broker's CA and the connector's client certificate and key, as Stream
        Reactor's source reads them (STREAM_REACTOR_TLS_FILES) from `directory`."""
        if self.connector_tls is None:
            return []
        files = {"ca.pem": (self.ca_certificate, "0644"),
                 "client.pem": (self.connector_tls.certificate_pem, "0644"),
                 "client.key": (self.connector_tls.private_key_pem, "0600")}
        return [docker.ContainerUploadArgs(file=f"{directory}/{file}", content=content,
                                           permissions=mode)
                for file, (content, mode) in files.items()]

    def url_for(self, consumer: DockerHost | None, tls: bool = False) -> str:
        """The broker URL for a client on Docker engine `consumer` (None: not in Docker here):
        by alias on the same engine (plain while the plain listeners exist and the client does
        not ask for TLS), else over TLS at the published port, or the external endpoint."""
        s = self._settings
        if s.placement is None:
            return s.endpoint
        # The plain listener is published on loopback only: a consumer on another engine
        # always uses TLS.
        if s.placement.docker_host == consumer and s.plaintext and not tls:
            plain = s.placement.reached_from(consumer, BROKER_PORT, s.port)
            return f"tcp://{plain.host}:{plain.port}"
        secure = s.placement.reached_from(consumer, TLS_PORT, s.tls_port)
        return f"ssl://{secure.host}:{secure.port}"

    def _run(
        self,
        name: str,
        s: MqttSettings,
        placement: ContainerPlacement,
        engine: DockerEngine,
        defaults: ContainerDefaults,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        logins = {
            s.device_username: "device",
            s.connector_username: "connector",
            s.monitor_username: "monitor",
            HEALTH_USERNAME: "health",
        }
        passwords: dict[str, pulumi.Output[str]] = {}
        salts: dict[str, pulumi.Output[str]] = {}
        for username, role in logins.items():
            passwords[username] = random.RandomPassword(
                f"{name}-{role}-password", length=32, special=False, opts=child
            ).result
            # Generated once and kept in state, so the password file is byte-identical on
            # every run until a password changes.
            salts[username] = random.RandomBytes(
                f"{name}-{role}-salt", length=12, opts=child
            ).base64
        users = pulumi.Output.all(
            *[
                pulumi.Output.all(username, passwords[username], salts[username])
                for username in logins
            ]
        )
        password_file = pulumi.Output.secret(
            users.apply(lambda rows: render_password_file([MqttUser(*row) for row in rows]))
        )
        layout = container_layout(s.plaintext)
        if s.brought_tls:
            certificate, key, ca = s.brought_tls.as_outputs()
        else:
            generated = generate_server_tls(
                f"{name}-tls", self, "health-pipeline MQTT broker",
                [*s.tls_server_names, placement.docker_host.address, placement.alias,
                 "localhost", LOOPBACK])
            certificate, key, ca = (generated.certificate_pem, generated.private_key_pem,
                                    generated.ca_pem)
        client_options = pulumi.Output.secret(passwords[HEALTH_USERNAME].apply(
            lambda pw: render_client_options(HEALTH_USERNAME, pw)))
        plain_ports = [Port(BROKER_PORT, s.port, LOOPBACK),
                       Port(WEBSOCKET_PORT, s.websocket_port, LOOPBACK)] if s.plaintext else []
        run_container(
            self,
            name,
            engine,
            defaults,
            ContainerSpec(
                role="mosquitto",
                image=s.image,
                alias=placement.alias,
                ports=[Port(TLS_PORT, s.tls_port), Port(SECURE_WEBSOCKET_PORT,
                                                        s.secure_websocket_port),
                       *plain_ports],
                volumes={"mosquitto-data": layout.data_dir, "mosquitto-log": layout.log_dir},
                uploads=[
                    docker.ContainerUploadArgs(
                        file=layout.conf_file, content=render_conf(layout, s.tuning),
                        permissions="0644",
                    ),
                    docker.ContainerUploadArgs(
                        file=layout.acl_file,
                        content=render_acl(s.device_username, s.connector_username,
                                           s.monitor_username, HEALTH_USERNAME),
                        permissions="0600",
                    ),
                    docker.ContainerUploadArgs(
                        file=layout.password_file, content=password_file, permissions="0600"
                    ),
                    docker.ContainerUploadArgs(file=layout.certificate_file, content=certificate,
                                               permissions="0644"),
                    docker.ContainerUploadArgs(file=layout.key_file, content=key,
                                               permissions="0600"),
                    docker.ContainerUploadArgs(file=layout.ca_file, content=ca,
                                               permissions="0644"),
                    docker.ContainerUploadArgs(file=f"{HEALTH_CONFIG_HOME}/mosquitto_sub",
                                               content=client_options, permissions="0600"),
                ],
                healthcheck=Healthcheck(command=health_probe(layout)),
            ),
        )
        # The machine running Pulumi is in no Docker engine of the stack.
        self.url = pulumi.Output.from_input(self.url_for(None))
        websocket = placement.reached_from(None, SECURE_WEBSOCKET_PORT, s.secure_websocket_port)
        self.websocket_url = pulumi.Output.from_input(f"wss://{websocket}")
        self.ca_certificate = ca
        self.device_password = pulumi.Output.secret(passwords[s.device_username])
        self.connector_password = pulumi.Output.secret(passwords[s.connector_username])
        self.monitor_username = pulumi.Output.from_input(s.monitor_username)
        self.monitor_password = pulumi.Output.secret(passwords[s.monitor_username])
