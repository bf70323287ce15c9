"""A paho MQTT client that records what happens to it, shared by the contract and engine tests
and the benchmarks."""

from __future__ import annotations

import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Client:
    """A paho client that records what happens to it, for assertions."""

    def __init__(self, port: int, user: str | None, password: str | None,
                 client_id: str = "", clean: bool = True, ca_file: str | None = None,
                 websocket: bool = False) -> None:
        """Plain MQTT, or TLS trusting `ca_file` (the broker's name checked), over TCP or
        websockets."""
        self.connected = threading.Event()
        self.reason = None
        self.received: list[bytes] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex,
                             clean_session=clean, protocol=mqtt.MQTTv311,
                             transport="websockets" if websocket else "tcp")
        if ca_file:
            self.c.tls_set_context(ssl.create_default_context(cafile=ca_file))
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.subscribed = threading.Event()
        self.c.on_subscribe = lambda client, userdata, mid, reason_codes, properties: (
            self.subscribed.set())
        self.c.on_message = lambda client, userdata, message: self.received.append(
            message.payload)
        self.port = port

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason = reason_code
        self.connected.set()

    def connect(self) -> bool:
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        return not self.reason.is_failure

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK, so nothing published next can be missed."""
        self.subscribed.clear()
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
