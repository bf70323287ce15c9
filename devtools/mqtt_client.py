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
        self.topics: list[str] = []
        """The topic of each message in `received`, in the same order."""
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex,
                             clean_session=clean, protocol=mqtt.MQTTv311,
                             transport="websockets" if websocket else "tcp")
        if ca_file:
            self.c.tls_set_context(ssl.create_default_context(cafile=ca_file))
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.subscribed = threading.Event()
        self.granted: list[int] = []
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.port = port

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason = reason_code
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.granted = [code.value for code in reason_codes]
        self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        self.topics.append(message.topic)
        self.received.append(message.payload)

    def connect(self) -> bool:
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        return not self.reason.is_failure

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe and wait for the SUBACK, so nothing published next can be missed; the
        broker's reason codes (0x80 and above: refused)."""
        self.subscribed.clear()
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"
        return self.granted

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
