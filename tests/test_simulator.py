"""The device simulator's data and command line, without a broker."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.streams import MQTT_TOPICS
from devtools.harness import ROOT
from devtools.health_data import conformance_problems
from simulator.__main__ import broker_from, messages, parse_args, shares
from simulator.vitals import ANOMALIES, NORMAL_RANGES, make_devices

FIELDS = {"deviceId", "timestamp", "heartRate", "systolic", "diastolic", "oxygenSaturation",
          "bodyTemperature", "latitude", "longitude"}


def _readings(count: int, **options) -> list[dict]:
    devices = make_devices(5, seed=7, **options)
    return [devices[i % 5].reading(now=1_700_000_000 + i) for i in range(count)]


@pytest.mark.parametrize("options", [{}, {"anomaly_rate": 0.5, "jitter_degrees": 0.2}],
                         ids=["normal", "anomalies-and-jitter"])
def test_every_message_conforms_to_the_seeds_health_data_schema(options) -> None:
    """As published: the JSON text, checked against schemas/health_data.avsc with its types
    (the seed's ints, long and doubles, written as such)."""
    for reading in _readings(3000, **options):
        text = json.dumps(reading)
        assert conformance_problems(text) == [], text
    assert set(reading) == FIELDS


@pytest.mark.parametrize(("change", "problem"), [
    ({"heartRate": 72.0}, "heartRate: int written as 72.0"),
    ({"bodyTemperature": 99}, "bodyTemperature: double written as the integer 99"),
    ({"timestamp": "1700000000"}, "timestamp is <1700000000> of type <class 'str'>"),
    ({"systolic": 2**31}, "systolic is <2147483648>"),
    ({"extra": 1}, "extra: not in the schema"),
])
def test_the_schema_check_finds_what_breaks_the_schema(change, problem) -> None:
    (reading,) = _readings(1)
    problems = conformance_problems(json.dumps({**reading, **change}))
    assert any(problem in p for p in problems), problems


def test_the_schema_check_finds_a_missing_field() -> None:
    (reading,) = _readings(1)
    del reading["latitude"]
    assert conformance_problems(json.dumps(reading)) == ["latitude: missing"]


def test_without_anomalies_every_reading_is_plausible() -> None:
    for reading in _readings(2000):
        for name, (low, high) in NORMAL_RANGES.items():
            assert low - 0.5 <= reading[name] <= high + 0.5, (name, reading[name])
        assert reading["diastolic"] < reading["systolic"]


def test_the_same_seed_gives_the_same_readings() -> None:
    assert _readings(50, anomaly_rate=0.1, jitter_degrees=0.01) == _readings(
        50, anomaly_rate=0.1, jitter_degrees=0.01)
    other = make_devices(5, seed=8)[0].reading(now=1_700_000_000)
    assert other != _readings(1)[0]


def test_vitals_drift_slowly_per_device() -> None:
    device = make_devices(1, seed=3)[0]
    rates = [device.reading(now=0)["heartRate"] for _ in range(200)]
    steps = [abs(a - b) for a, b in itertools.pairwise(rates)]
    assert max(steps) <= 8 and len(set(rates)) > 5


def test_anomalies_appear_at_about_the_set_rate() -> None:
    devices = make_devices(10, seed=11, anomaly_rate=0.05)
    readings = [devices[i % 10].reading(now=0) for i in range(4000)]
    share = sum(d.anomalies for d in devices) / len(readings)
    assert 0.04 <= share <= 0.06
    out_of_range = [r for r in readings if r["heartRate"] > 120 or r["oxygenSaturation"] < 90
                    or r["bodyTemperature"] > 100.5 or r["systolic"] > 160 or
                    r["heartRate"] < 48]
    assert len(out_of_range) == pytest.approx(share * len(readings), rel=0.15)
    assert set(ANOMALIES) == {"tachycardia", "bradycardia", "hypertension", "hypoxemia",
                              "fever"}


def test_location_jitter_stays_near_home() -> None:
    still = _readings(20)
    moving = _readings(20, jitter_degrees=0.01)
    assert len({(r["latitude"], r["longitude"]) for r in still}) == 5
    assert len({(r["latitude"], r["longitude"]) for r in moving}) == 20
    for a, b in zip(still, moving, strict=True):
        assert abs(a["latitude"] - b["latitude"]) <= 0.01


@pytest.mark.parametrize("argv", [["--devices", "0"], ["--anomaly-rate", "2"],
                                  ["--duration", "5", "--rate", "0"]])
def test_bad_options_are_refused(argv) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2


def test_processes_share_one_fleet_and_every_message_between_them() -> None:
    """--processes 3: the same devices and the same number of messages as one process, each
    device in exactly one process, the messages split within one of each other."""
    args = parse_args(["--devices", "7", "--count", "100", "--processes", "3", "--seed", "4"])
    parts = [list(messages(args, part, 3)) for part in range(3)]
    assert [len(p) for p in parts] == [34, 33, 33] == shares(100, 3)
    owners = [{r["deviceId"] for r in p} for p in parts]
    assert set().union(*owners) == {r["deviceId"] for r in messages(args)}
    assert sum(len(o) for o in owners) == 7, "a device published from two processes"


@pytest.mark.parametrize("argv", [["--processes", "0"], ["--devices", "2", "--processes", "3"]])
def test_more_processes_than_devices_or_none_is_refused(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert "--processes must be from 1 to --devices" in capsys.readouterr().err


def test_it_publishes_to_the_first_pipeline_topic_unless_told_another() -> None:
    assert parse_args([]).topic == MQTT_TOPICS[0] == "health/device_data"
    assert parse_args(["--topic", MQTT_TOPICS[1]]).topic == "health/health_data"


def test_help_describes_the_options() -> None:
    done = subprocess.run([sys.executable, "-m", "simulator", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    for option in ("--stack", "--outputs", "--topic", "--rate", "--count", "--duration", "--qos",
                   "--seed", "--anomaly-rate", "--jitter", "--processes"):
        assert option in done.stdout


@pytest.mark.parametrize(("argv", "url", "tls", "websocket"), [
    (["--url", "tcp://broker:1883"], "tcp://broker:1883", False, False),
    (["--url", "mqtt://broker"], "tcp://broker:1883", False, False),
    (["--url", "ssl://broker:8883", "--cafile", "ca.pem"], "ssl://broker:8883", True, False),
    (["--url", "mqtts://broker", "--cafile", "ca.pem"], "ssl://broker:8883", True, False),
    (["--url", "wss://broker:9443", "--cafile", "ca.pem"], "wss://broker:9443", True, True),
    (["--url", "ssl://broker:8883", "--port", "18883"], "ssl://broker:18883", True, False),
])
def test_the_url_scheme_decides_tls_and_websockets_as_everywhere_else(
    argv, url, tls, websocket
) -> None:
    broker = broker_from(parse_args(argv))
    assert (broker.url, broker.tls, broker.websocket) == (url, tls, websocket)
    assert broker.ca_file == ("ca.pem" if "--cafile" in argv else None)


def test_the_stacks_ca_is_trusted_for_its_tls_url(tmp_path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"mqttUrl": "ssl://localhost:8883",
                                   "mqttCaCertificate": "-----BEGIN CERTIFICATE-----\n",
                                   "mqttDeviceUsername": "device",
                                   "mqttDevicePassword": "secret-pw"}))
    broker = broker_from(parse_args(["--outputs", str(outputs)]))
    assert (broker.url, broker.username, broker.password) == ("ssl://localhost:8883", "device",
                                                              "secret-pw")
    assert Path(broker.ca_file).read_text() == "-----BEGIN CERTIFICATE-----\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "http://broker"], "is not a broker URL: use tcp://, mqtt://, ssl://, mqtts://"),
    (["--url", "tcp://broker:1883", "--cafile", "ca.pem"], "--cafile is for TLS"),
])
def test_a_bad_url_or_cafile_is_one_clear_error(argv, message) -> None:
    with pytest.raises(SystemExit, match=re.escape(message)):
        broker_from(parse_args(argv))
