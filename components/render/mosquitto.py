"""Mosquitto's config, password file and ACL, rendered deterministically from their inputs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from components.mqtt_urls import MQTT_PORT, WS_PORT
from components.render.tls_files import ServerCertificateFiles
from components.settings import MosquittoTuning

__all__ = [
    "HEALTH_TOPIC",
    "PBKDF2_ITERATIONS",
    "MosquittoLayout",
    "MqttUser",
    "render_acl",
    "render_client_options",
    "render_conf",
    "render_password_file",
    "render_password_line",
]

PBKDF2_ITERATIONS = 101
"""What `mosquitto_passwd` writes for its `$7$` (PBKDF2-HMAC-SHA512) format."""

HEALTH_TOPIC = "health/#"
UPTIME_TOPIC = "$SYS/broker/uptime"


@dataclass(frozen=True)
class MosquittoLayout(ServerCertificateFiles):
    """Paths and ports as the broker sees them; the container and local test brokers differ.
    A port of None has no listener."""

    config_dir: str = "/mosquitto/config"
    data_dir: str = "/mosquitto/data"
    log_dir: str = "/mosquitto/log"
    certs_dir: str = "/mosquitto/certs"
    port: int | None = MQTT_PORT
    websocket_port: int | None = WS_PORT
    tls_port: int | None = None
    secure_websocket_port: int | None = None
    bind_address: str | None = None

    @property
    def ca_file(self) -> str:
        """What the container's healthcheck trusts."""
        return f"{self.certs_dir}/ca.crt"

    @property
    def password_file(self) -> str:
        return f"{self.config_dir}/passwd"

    @property
    def acl_file(self) -> str:
        return f"{self.config_dir}/acl"

    @property
    def conf_file(self) -> str:
        return f"{self.config_dir}/mosquitto.conf"


@dataclass(frozen=True)
class MqttUser:
    username: str
    password: str
    salt_b64: str
    """12 random bytes, base64, generated once (pulumi-random) so the file never changes."""


def render_password_line(user: MqttUser, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = base64.b64decode(user.salt_b64, validate=True)
    digest = hashlib.pbkdf2_hmac("sha512", user.password.encode(), salt, iterations, dklen=64)
    encoded_salt = base64.b64encode(salt).decode()
    return f"{user.username}:$7${iterations}${encoded_salt}${base64.b64encode(digest).decode()}"


def render_password_file(users: Sequence[MqttUser]) -> str:
    return "".join(render_password_line(u) + "\n" for u in sorted(users, key=lambda u: u.username))


def render_acl(device_user: str, connector_user: str, monitor_user: str,
               health_user: str) -> str:
    """Devices may only publish, the connector and the monitor user (someone watching the
    flow) may only subscribe, the healthcheck user may only read the broker's uptime. A user
    without a matching rule is denied."""
    return (
        "# Rendered by health-pipeline; edit the program, not this file.\n"
        f"user {device_user}\ntopic write {HEALTH_TOPIC}\n\n"
        f"user {connector_user}\ntopic read {HEALTH_TOPIC}\n\n"
        f"user {monitor_user}\ntopic read {HEALTH_TOPIC}\n\n"
        f"user {health_user}\ntopic read {UPTIME_TOPIC}\n"
    )


def render_conf(layout: MosquittoLayout, tuning: MosquittoTuning) -> str:
    """The broker's whole configuration: `layout` says where, `tuning` how much it queues and
    how often it saves (mqttMaxInflightMessages and the other settings)."""
    bind = f" {layout.bind_address}" if layout.bind_address else ""
    lines = [
        "# Rendered by health-pipeline; edit the program, not this file.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {layout.password_file}",
        f"acl_file {layout.acl_file}",
        "",
        "persistence true",
        f"persistence_location {layout.data_dir}/",
        f"autosave_interval {tuning.autosave_interval}",
        f"autosave_on_changes {'true' if tuning.autosave_on_changes else 'false'}",
        "# QoS 1 messages for offline persistent sessions are kept, up to a bound.",
        f"max_inflight_messages {tuning.max_inflight_messages}",
        f"max_queued_messages {tuning.max_queued_messages}",
        "",
        f"log_dest file {layout.log_dir}/mosquitto.log",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "",
    ]
    tls = [f"certfile {layout.certificate_file}", f"keyfile {layout.key_file}"]
    listeners = (
        (layout.port, "mqtt", []),
        (layout.websocket_port, "websockets", []),
        # The minimum TLS version: websockets listeners take only certfile, keyfile, cafile and
        # ciphers (mosquitto.conf(5), protocol), so it applies to the MQTT one.
        (layout.tls_port, "mqtt", [*tls, "tls_version tlsv1.2"]),
        (layout.secure_websocket_port, "websockets", tls),
    )
    for port, protocol, options in listeners:
        if port is not None:
            lines += ["", f"listener {port}{bind}", f"protocol {protocol}", *options]
    return "\n".join(lines) + "\n"


def render_client_options(username: str, password: str) -> str:
    """mosquitto_sub's config file ($XDG_CONFIG_HOME/mosquitto_sub, one option per line,
    mosquitto_sub(1)): the healthcheck's login stays out of its command line."""
    return f"-u {username}\n-P {password}\n"
