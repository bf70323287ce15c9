"""A real Mosquitto with the password file and ACL the program renders for dev and prod."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from components.mqtt import container_layout
from components.render.mosquitto import render_conf
from components.streams import MQTT_TOPICS
from devtools.harness import ROOT, ProgramRun, unwrap
from devtools.mqtt_client import Client
from devtools.servers import Mosquitto, free_port, wait_until

CONFIG = "/mosquitto/config"
TOPIC = MQTT_TOPICS[0]


@pytest.fixture
def mqtt_server(run: ProgramRun):
    # Not pytest's tmp_path: its parents are private to root, and the broker runs as its own
    # user, as in the image.
    root = Path(tempfile.mkdtemp(prefix="health-pipeline-mosquitto-"))
    server = Mosquitto.rendered_for(run, root).start()
    yield server
    server.stop()
    shutil.rmtree(root)


def _credentials(run: ProgramRun, who: str) -> tuple[str, str]:
    return run.outputs[f"mqtt{who}Username"][0], run.outputs[f"mqtt{who}Password"][0]




def test_the_program_conf_is_the_renderer_with_the_container_layout(run, mqtt_server) -> None:
    """The servers here use the same renderer and tuning with local paths; nothing else
    differs."""
    conf = unwrap(run.upload("mosquitto", f"{CONFIG}/mosquitto.conf")["content"])
    assert conf == render_conf(container_layout(plaintext=run.stack == "dev"),
                               mqtt_server.tuning)


def test_device_password_connects_and_publishes_with_qos1_to_both_topics(run, mqtt_server):
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    assert device.connect()
    for topic in MQTT_TOPICS:
        info = device.c.publish(topic, b"{}", qos=1)
        info.wait_for_publish(5)
        assert info.is_published(), topic
    device.close()


@pytest.mark.parametrize("who", ["wrong password", "anonymous", "unknown user"])
def test_anyone_else_is_refused(run, mqtt_server, who) -> None:
    user, password = _credentials(run, "Device")
    credentials = {"wrong password": (user, password + "x"), "anonymous": (None, None),
                   "unknown user": ("intruder", password)}[who]
    client = Client(mqtt_server.port, *credentials)
    assert not client.connect()
    assert "authori" in str(client.reason).lower()
    client.close()


def test_connector_reads_what_devices_publish_on_both_topics(run, mqtt_server) -> None:
    """As the MQTT sources subscribe: each topic by name, on one session."""
    connector = Client(mqtt_server.port, *_credentials(run, "Connector"))
    assert connector.connect()
    for topic in MQTT_TOPICS:
        assert connector.subscribe(topic) == [1], topic
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    assert device.connect()
    for index, topic in enumerate(MQTT_TOPICS):
        device.c.publish(topic, f'{{"deviceId":"d{index}"}}'.encode(), qos=1).wait_for_publish(5)
    assert wait_until(lambda: len(connector.received) == len(MQTT_TOPICS))
    assert list(zip(connector.topics, connector.received, strict=True)) == [
        (topic, f'{{"deviceId":"d{index}"}}'.encode()) for index, topic in enumerate(MQTT_TOPICS)]
    device.close()
    connector.close()


def test_device_cannot_subscribe_and_connector_cannot_publish(run, mqtt_server) -> None:
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    connector = Client(mqtt_server.port, *_credentials(run, "Connector"))
    listener = Client(mqtt_server.port, *_credentials(run, "Connector"))
    for c in (device, connector, listener):
        assert c.connect()
    device.subscribe("health/#")
    listener.subscribe("health/#")
    connector.c.publish(TOPIC, b"from-connector", qos=1).wait_for_publish(5)
    device.c.publish(TOPIC, b"from-device", qos=1).wait_for_publish(5)
    assert wait_until(lambda: listener.received == [b"from-device"])
    time.sleep(0.3)
    assert listener.received == [b"from-device"], "the connector's publish went through"
    assert device.received == [], "the device read a topic it may only write"
    for c in (device, connector, listener):
        c.close()


def _health_password(run: ProgramRun) -> str:
    """The healthcheck user's generated password (it is no stack output)."""
    return next(r.computed["result"] for r in run.resources if r.name == "mqtt-health-password")


def test_the_monitor_user_reads_what_devices_publish_on_both_topics(run, mqtt_server) -> None:
    monitor = Client(mqtt_server.port, *_credentials(run, "Monitor"))
    assert monitor.connect()
    assert monitor.subscribe("health/#") == [1]
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    assert device.connect()
    for topic in MQTT_TOPICS:
        device.c.publish(topic, topic.encode(), qos=1).wait_for_publish(5)
    assert wait_until(lambda: len(monitor.received) == len(MQTT_TOPICS))
    assert monitor.topics == list(MQTT_TOPICS)
    assert monitor.received == [topic.encode() for topic in MQTT_TOPICS]
    device.close()
    monitor.close()


def test_the_monitor_user_cannot_publish(run, mqtt_server) -> None:
    """What the monitor publishes never reaches the connector's subscription; a device's
    message sent after it does, so the connector was listening."""
    monitor = Client(mqtt_server.port, *_credentials(run, "Monitor"))
    connector = Client(mqtt_server.port, *_credentials(run, "Connector"))
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    for c in (monitor, connector, device):
        assert c.connect()
    connector.subscribe("health/#")
    for topic in MQTT_TOPICS:
        monitor.c.publish(topic, b"from-monitor", qos=1).wait_for_publish(5)
    device.c.publish(TOPIC, b"from-device", qos=1).wait_for_publish(5)
    assert wait_until(lambda: connector.received == [b"from-device"])
    time.sleep(0.3)
    assert connector.received == [b"from-device"], "the monitor's publish went through"
    for c in (monitor, connector, device):
        c.close()


@pytest.mark.parametrize("topic", ["$SYS/broker/uptime", "$SYS/#"])
def test_the_monitor_user_cannot_subscribe_outside_health(run, mqtt_server, topic) -> None:
    """Outside health/# only the broker itself publishes ($SYS; nobody may write elsewhere).
    Mosquitto 2.0 acknowledges the subscription and checks the ACL on every message, so the
    monitor gets nothing on it, while the healthcheck user, allowed the uptime, gets that
    retained message at once."""
    monitor = Client(mqtt_server.port, *_credentials(run, "Monitor"))
    health = Client(mqtt_server.port, "healthcheck", _health_password(run))
    assert monitor.connect() and health.connect()
    monitor.subscribe(topic)
    assert health.subscribe("$SYS/broker/uptime") == [1]
    assert wait_until(lambda: health.received)
    time.sleep(0.5)
    assert monitor.received == [], f"the monitor read {monitor.topics}"
    monitor.close()
    health.close()


def test_qos1_messages_for_an_offline_session_survive_a_broker_restart(run, mqtt_server):
    user, password = _credentials(run, "Connector")
    subscriber = Client(mqtt_server.port, user, password, client_id="durable", clean=False)
    assert subscriber.connect()
    subscriber.subscribe("health/#")
    subscriber.close()
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    assert device.connect()
    sent = [f'{{"n":{i}}}'.encode() for i in range(20)]
    for payload in sent:
        device.c.publish(TOPIC, payload, qos=1).wait_for_publish(5)
    device.close()
    mqtt_server.restart()
    again = Client(mqtt_server.port, user, password, client_id="durable", clean=False)
    assert again.connect()
    assert wait_until(lambda: len(again.received) >= len(sent)), mqtt_server.log[-2000:]
    assert again.received == sent
    again.close()


def _simulate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_simulator_delivers_every_message_with_qos1(run, mqtt_server) -> None:
    user, password = _credentials(run, "Device")
    done = _simulate("--port", str(mqtt_server.port), "--username", user, "--password",
                     password, "--count", "200", "--rate", "0", "--devices", "7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sent 200, acknowledged 200, failed 0,"), done.stdout


def test_simulator_bad_credentials_are_one_clear_error(run, mqtt_server) -> None:
    done = _simulate("--port", str(mqtt_server.port), "--username", "device",
                     "--password", "wrong", "--count", "1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: the broker refused the connection: Not authorized at "
        f"tcp://localhost:{mqtt_server.port} (check the username and password)"
    ]


def test_simulator_without_a_broker_is_one_clear_error() -> None:
    port = free_port()
    done = _simulate("--port", str(port), "--count", "1")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: cannot reach the MQTT broker at tcp://localhost:{port}: Connection refused"
    )


@pytest.mark.parametrize("subscription", [f"$share/orphans/{TOPIC}", TOPIC])
def test_a_session_that_unsubscribes_still_gets_what_was_queued_for_it(
        run, mqtt_server, subscription) -> None:
    """What the MQTT source's adoption of an orphaned session relies on: it unsubscribes at
    once (so that the broker queues nothing more for the session) and then reads the backlog.
    Mosquitto keeps the messages it queued before the UNSUBSCRIBE and sends them as the
    client acknowledges, max_inflight_messages at a time; the MQTT specs allow a broker to
    drop them (MQTT 3.1.1 §3.10.4, "MAY continue to deliver")."""
    user, password = _credentials(run, "Connector")
    inflight = mqtt_server.tuning.max_inflight_messages
    orphan = Client(mqtt_server.port, user, password, client_id="orphan", clean=False)
    assert orphan.connect()
    orphan.subscribe(subscription)
    orphan.close()
    device = Client(mqtt_server.port, *_credentials(run, "Device"))
    assert device.connect()
    sent = [f'{{"n":{i}}}'.encode() for i in range(inflight + 50)]
    for payload in sent:
        device.c.publish(TOPIC, payload, qos=1).wait_for_publish(5)
    device.close()
    adopter = Client(mqtt_server.port, user, password, client_id="orphan", clean=False,
                     manual_ack=True)
    assert adopter.connect() and adopter.session_present
    adopter.unsubscribe(subscription)
    assert wait_until(lambda: len(adopter.received) >= inflight)
    time.sleep(0.5)
    assert len(adopter.received) == inflight, "the broker sent more than its in-flight window"
    deadline = time.monotonic() + 10
    while len(adopter.received) < len(sent) and time.monotonic() < deadline:
        adopter.ack_all()
        time.sleep(0.05)
    adopter.ack_all()
    assert adopter.received == sent
    adopter.close()
    again = Client(mqtt_server.port, user, password, client_id="orphan", clean=True)
    assert again.connect()
    again.close()
