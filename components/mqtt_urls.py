"""Broker URLs, one rule everywhere (settings, connectors, simulator, outputs): `tcp://` and
`mqtt://` are plain MQTT, `ssl://` and `mqtts://` are MQTT over TLS, `ws://` and `wss://` are
MQTT over websockets (plain and TLS). Pure Python: the simulator imports it too."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BROKER_SCHEMES", "MQTTS_PORT", "MQTT_PORT", "MQTT_SCHEMES", "WSS_PORT", "WS_PORT",
           "MqttUrl", "paho_url", "parse_mqtt_url"]

MQTT_SCHEMES = ("tcp", "mqtt", "ssl", "mqtts")
"""What a broker endpoint setting and an MQTT source connector take."""
BROKER_SCHEMES = (*MQTT_SCHEMES, "ws", "wss")
"""What a device (the simulator) may also use."""
TLS_SCHEMES = ("ssl", "mqtts", "wss")
MQTT_PORT, MQTTS_PORT, WS_PORT, WSS_PORT = 1883, 8883, 9001, 9443
"""The broker's listeners, by convention (and in the program's Mosquitto container)."""
DEFAULT_PORTS = {"tcp": MQTT_PORT, "mqtt": MQTT_PORT, "ssl": MQTTS_PORT, "mqtts": MQTTS_PORT,
                 "ws": WS_PORT, "wss": WSS_PORT}


@dataclass(frozen=True)
class MqttUrl:
    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme in TLS_SCHEMES

    @property
    def websocket(self) -> bool:
        return self.scheme in ("ws", "wss")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_mqtt_url(url: str, schemes: tuple[str, ...] = BROKER_SCHEMES) -> MqttUrl:
    """`scheme://host[:port]`; ValueError naming what is allowed otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{url!r} is not a broker URL: use "
                         f"{', '.join(s + '://' for s in schemes)} followed by host:port")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    return MqttUrl(parts.scheme, parts.hostname, port)


def paho_url(url: str) -> str:
    """A broker URL in the Java paho client's spelling: mqtt:// is tcp://, mqtts:// is
    ssl://."""
    for ours, paho in (("mqtts://", "ssl://"), ("mqtt://", "tcp://")):
        if url.startswith(ours):
            return paho + url[len(ours):]
    return url
