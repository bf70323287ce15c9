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
from components.render.mosquitto import (
    UPTIME_TOPIC,
    MosquittoLayout,
    MqttUser,
    render_acl,
    render_conf,
    render_password_file,
)
from components.settings import ContainerPlacement, DockerHost, Mode, MqttSettings

__all__ = ["HEALTH_USERNAME", "MqttBroker", "MqttBrokerArgs"]

BROKER_PORT = 1883
HEALTH_USERNAME = "healthcheck"
"""Broker user of the container healthcheck; it may only read the broker's uptime."""


@dataclass(frozen=True)
class MqttBrokerArgs:
    settings: MqttSettings
    engine: DockerEngine | None
    """The engine the broker runs on; None in external mode."""
    defaults: ContainerDefaults


class MqttBroker(pulumi.ComponentResource):
    """Mosquitto with authentication and ACLs (container mode), or an existing broker."""

    url: pulumi.Output[str]
    """Broker URL for devices and the simulator, from the machine running Pulumi."""
    websocket_url: pulumi.Output[str]
    """MQTT over websockets, from the machine running Pulumi (container mode)."""
    device_username: pulumi.Output[str]
    device_password: pulumi.Output[str]
    """Secret."""
    connector_username: pulumi.Output[str]
    connector_password: pulumi.Output[str]
    """Secret."""

    def __init__(
        self, name: str, args: MqttBrokerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:mqtt:MqttBroker", name, None, opts)
        s = args.settings
        self._settings = s
        self.device_username = pulumi.Output.from_input(s.device_username)
        self.connector_username = pulumi.Output.from_input(s.connector_username)
        if s.mode is Mode.EXTERNAL:
            if s.device_password is None or s.connector_password is None:
                raise ValueError("an external broker needs both MQTT passwords")
            self.url = pulumi.Output.from_input(s.endpoint)
            self.websocket_url = pulumi.Output.from_input("")
            self.device_password = pulumi.Output.secret(s.device_password)
            self.connector_password = pulumi.Output.secret(s.connector_password)
        else:
            if args.engine is None or s.placement is None:
                raise ValueError("container mode needs a Docker engine")
            self._run(name, s, s.placement, args.engine, args.defaults)
        self.register_outputs(
            {
                "url": self.url,
                "websocketUrl": self.websocket_url,
                "deviceUsername": self.device_username,
                "devicePassword": self.device_password,
                "connectorUsername": self.connector_username,
                "connectorPassword": self.connector_password,
            }
        )

    def url_for(self, consumer: DockerHost | None) -> str:
        """The broker URL for a client on Docker engine `consumer` (None: not in Docker here):
        by alias on the same engine, else at the published port or the external endpoint."""
        s = self._settings
        if s.placement is None:
            return s.endpoint
        if s.placement.docker_host == consumer:
            return f"tcp://{s.placement.alias}:{BROKER_PORT}"
        return f"tcp://{s.placement.docker_host.address}:{s.port}"

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
        layout = MosquittoLayout(websocket_port=9001)
        health_password = passwords[HEALTH_USERNAME]
        probe = pulumi.Output.concat(
            "mosquitto_sub -q 0 -C 1 -W 5 -h 127.0.0.1 -p 1883 -t '",
            UPTIME_TOPIC,
            "' -u ",
            HEALTH_USERNAME,
            " -P ",
            health_password,
            " > /dev/null",
        )
        run_container(
            self,
            name,
            engine,
            defaults,
            ContainerSpec(
                role="mosquitto",
                image=s.image,
                alias=placement.alias,
                ports=[Port(layout.port, s.port), Port(9001, s.websocket_port)],
                volumes={"mosquitto-data": layout.data_dir, "mosquitto-log": layout.log_dir},
                uploads=[
                    docker.ContainerUploadArgs(
                        file=layout.conf_file, content=render_conf(layout), permissions="0644"
                    ),
                    docker.ContainerUploadArgs(
                        file=layout.acl_file,
                        content=render_acl(s.device_username, s.connector_username,
                                           HEALTH_USERNAME),
                        permissions="0600",
                    ),
                    docker.ContainerUploadArgs(
                        file=layout.password_file, content=password_file, permissions="0600"
                    ),
                ],
                healthcheck=Healthcheck(command=["CMD-SHELL", probe]),
            ),
        )
        address = placement.docker_host.address
        self.url = pulumi.Output.from_input(f"tcp://{address}:{s.port}")
        self.websocket_url = pulumi.Output.from_input(f"ws://{address}:{s.websocket_port}")
        self.device_password = pulumi.Output.secret(passwords[s.device_username])
        self.connector_password = pulumi.Output.secret(passwords[s.connector_username])
