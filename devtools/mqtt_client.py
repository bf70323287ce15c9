"""paho MQTT clients that record what happens to them, shared by the contract and engine tests
and the benchmarks."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Client:
    """A paho client that records what happens to it, for assertions."""

    def __init__(self, port: int, user: str | None, password: str | None,
                 client_id: str = "", clean: bool = True, ca_file: str | None = None,
                 websocket: bool = False, manual_ack: bool = False) -> None:
        """Plain MQTT, or TLS trusting `ca_file` (the broker's name checked), over TCP or
        websockets. With `manual_ack` a QoS 1 message is acknowledged only by `ack_all`, so
        the broker sends no more than its max_inflight_messages meanwhile."""
        self.connected = threading.Event()
        self.reason = None
        self.session_present: bool | None = None
        """The CONNACK's session-present flag: the broker held a session for this client id."""
        self.received: list[bytes] = []
        self._unacknowledged: list[tuple[int, int]] = []
        self.topics: list[str] = []
        """The topic of each message in `received`, in the same order."""
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex,
                             clean_session=clean, protocol=mqtt.MQTTv311,
                             transport="websockets" if websocket else "tcp",
                             manual_ack=manual_ack)
        if ca_file:
            self.c.tls_set_context(ssl.create_default_context(cafile=ca_file))
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.subscribed = threading.Event()
        self.granted: list[int] = []
        self.c.on_subscribe = self._on_subscribe
        self.unsubscribed = threading.Event()
        self.c.on_unsubscribe = lambda client, userdata, mid, reason_codes, properties: (
            self.unsubscribed.set())
        self.c.on_message = self._on_message
        self.port = port

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason = reason_code
        self.session_present = flags.session_present
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.granted = [code.value for code in reason_codes]
        self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        self.topics.append(message.topic)
        self.received.append(message.payload)
        self._unacknowledged.append((message.mid, message.qos))

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

    def unsubscribe(self, *topics: str) -> None:
        """Unsubscribe and wait for the UNSUBACK."""
        self.unsubscribed.clear()
        self.c.unsubscribe(list(topics))
        assert self.unsubscribed.wait(5), "no UNSUBACK"

    def ack_all(self) -> int:
        """With `manual_ack`: acknowledge every message received so far; how many."""
        pending, self._unacknowledged = self._unacknowledged, []
        for mid, qos in pending:
            self.c.ack(mid, qos)
        return len(pending)

    def close(self) -> None:
        """DISCONNECT, then stop the network thread, which then ends at once: stopped first,
        paho's thread sits out its 1 s select timeout before it notices."""
        self.c.disconnect()
        self.c.loop_stop()


class CountingPublisher:
    """A device fleet in one client: numbered QoS 1 messages at a steady rate, and the time
    the broker acknowledged each (PUBACK), so a fault test can tell what was promised from
    what arrived. paho reconnects by itself and resends what was in flight."""

    def __init__(self, port: int, user: str, password: str, ca_file: str, topic: str,
                 devices: int = 10) -> None:
        self.topic = topic
        self.devices = devices
        # paho calls on_publish on its own thread, holding its own lock, and may do so before
        # publish() has returned the message id: so nothing here is shared under a lock.
        # Acks are matched to messages per id in order at the end (an id is reused only
        # after its ack).
        self._sent: dict[int, list[int]] = {}
        self._acks: list[tuple[int, float]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"fault-publisher-{uuid.uuid4().hex[:8]}",
                             clean_session=True, protocol=mqtt.MQTTv311)
        self.c.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.c.username_pw_set(user, password)
        self.c.reconnect_delay_set(min_delay=1, max_delay=2)
        self.c.max_inflight_messages_set(100)
        self.c.on_publish = lambda client, userdata, mid, reason_code, properties: (
            self._acks.append((mid, time.monotonic())))
        self.port = port

    @property
    def acked(self) -> dict[int, float]:
        """Sequence number -> monotonic time of its PUBACK."""
        position: dict[int, int] = {}
        acked = {}
        for mid, at in list(self._acks):
            index = position.get(mid, 0)
            position[mid] = index + 1
            acked[self._sent[mid][index]] = at
        return acked

    def payload(self, seq: int) -> bytes:
        return json.dumps({"deviceId": f"fault-device-{seq % self.devices}", "seq": seq,
                           "timestamp": time.time()}).encode()

    def run(self, count: int, rate: float, drain_timeout: float = 120.0, first: int = 0) -> None:
        """Publish `count` messages at `rate` per second, numbered from `first`, then wait
        until every one is acknowledged or `drain_timeout` passes."""
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        start = time.monotonic()
        for seq in range(first, first + count):
            delay = start + (seq - first) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            info = self.c.publish(self.topic, self.payload(seq), qos=1)
            self._sent.setdefault(info.mid, []).append(seq)
        deadline = time.monotonic() + drain_timeout
        while len(self._acks) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        self.c.disconnect()
        self.c.loop_stop()
