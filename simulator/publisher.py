"""Publishing with paho-mqtt 2.x: connect once, publish at a steady rate, count broker
acknowledgements, and turn connection failures into one clear error."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

__all__ = ["Broker", "ConnectError", "PublishStats", "Publisher"]


class ConnectError(RuntimeError):
    """The broker refused us or could not be reached; the message says which."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    tls: bool = False
    ca_file: str | None = None
    """TLS: the CA bundle the broker's certificate must chain to; None trusts the system's
    CAs. The broker's name is always checked."""
    websocket: bool = False

    @property
    def url(self) -> str:
        scheme = {(False, False): "tcp", (True, False): "ssl", (False, True): "ws",
                  (True, True): "wss"}[(self.tls, self.websocket)]
        return f"{scheme}://{self.host}:{self.port}"


@dataclass
class PublishStats:
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class Publisher:
    def __init__(self, broker: Broker, qos: int = 1, connect_timeout: float = 10.0) -> None:
        self.broker = broker
        self.qos = qos
        self.stats = PublishStats()
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=broker.client_id,
            protocol=mqtt.MQTTv311,
            transport="websockets" if broker.websocket else "tcp",
        )
        if broker.tls:
            context = ssl.create_default_context(cafile=broker.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.client.tls_set_context(context)
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        # Many messages may wait for their PUBACK at once; none is dropped on our side.
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.connect_timeout = connect_timeout

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._connect_error = f"the broker refused the connection: {reason_code}"
        self._connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        """QoS 1: the broker's PUBACK arrived. QoS 0: the message left this client."""
        with self._lock:
            if reason_code.is_failure:
                self.stats.failed += 1
            else:
                self.stats.acknowledged += 1

    def connect(self) -> None:
        where = self.broker.url
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except ssl.SSLError as error:
            raise ConnectError(f"TLS with the MQTT broker at {where} failed: "
                               f"{error.reason or error} (is --cafile the broker's CA?)") from None
        except OSError as error:
            raise ConnectError(f"cannot reach the MQTT broker at {where}: "
                               f"{error.strerror or error}") from None
        self.client.loop_start()
        if not self._connected.wait(self.connect_timeout):
            self.close()
            raise ConnectError(f"the MQTT broker at {where} did not answer within "
                               f"{self.connect_timeout:g} s")
        if self._connect_error:
            self.close()
            hint = (" (check the username and password)"
                    if "authori" in self._connect_error.lower() else "")
            raise ConnectError(f"{self._connect_error} at {where}{hint}")

    def run(
        self,
        topic: str,
        messages: Iterator[dict],
        rate: float,
        progress: Callable[[PublishStats], None] | None = None,
    ) -> PublishStats:
        """Publish every message; `rate` per second overall (0: as fast as possible). Waits
        for the outstanding acknowledgements before it returns."""
        start = time.perf_counter()
        next_progress = start + 1.0
        for index, message in enumerate(messages):
            if rate:
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            info = self.client.publish(topic, json.dumps(message), qos=self.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                with self._lock:
                    self.stats.failed += 1
            self.stats.sent += 1
            now = time.perf_counter()
            if progress and now >= next_progress:
                self.stats.seconds = now - start
                progress(self.stats)
                next_progress = now + 1.0
        self._drain(timeout=30.0)
        # Until the last acknowledgement: the rate the broker really took.
        self.stats.seconds = time.perf_counter() - start
        return self.stats

    def _drain(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                if self.stats.acknowledged + self.stats.failed >= self.stats.sent:
                    return
            time.sleep(0.01)
        with self._lock:
            missing = self.stats.sent - self.stats.acknowledged - self.stats.failed
            self.stats.failed += missing

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
