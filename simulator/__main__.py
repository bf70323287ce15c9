"""Command line: simulated devices publishing vitals to the stack's MQTT broker.

    python -m simulator --devices 10 --rate 20 --duration 60 --stack dev
    python -m simulator --stack dev --devices 100 --rate 8000 --count 80000 --processes 4
    python -m simulator --url ssl://localhost:8883 --cafile ca.pem --username device \
        --password ... --count 100
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from components.mqtt_urls import BROKER_SCHEMES, parse_mqtt_url
from components.streams import MQTT_TOPICS
from simulator.publisher import Broker, ConnectError, Publisher, PublishStats
from simulator.vitals import make_devices


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simulated health devices publishing JSON vitals over MQTT.",
    )
    where = p.add_argument_group("broker (flags win over the stack outputs)")
    where.add_argument("--stack", help="read the broker URL and device credentials from "
                       "`pulumi stack output --show-secrets` of this stack")
    where.add_argument("--outputs", metavar="FILE",
                       help="read them from a file holding that command's JSON instead")
    where.add_argument("--url", help="broker URL: tcp:// or mqtt:// (plain), ssl:// or mqtts:// "
                       "(TLS), ws:// or wss:// (websockets); default: the stack's mqttUrl, "
                       "else tcp://localhost:1883")
    where.add_argument("--cafile", help="TLS: the CA bundle the broker's certificate chains to "
                       "(default: the stack's mqttCaCertificate, else the system's CAs)")
    where.add_argument("--host", help="broker host, replacing the URL's")
    where.add_argument("--port", type=int, help="broker port, replacing the URL's")
    where.add_argument("--username", help="device user")
    where.add_argument("--password", help="device password (or env MQTT_PASSWORD)")
    where.add_argument("--topic", default=MQTT_TOPICS[0],
                       help=f"MQTT topic to publish to; the pipeline reads "
                       f"{' and '.join(MQTT_TOPICS)} (default: {MQTT_TOPICS[0]})")
    load = p.add_argument_group("load")
    load.add_argument("--devices", type=int, default=5, help="simulated devices (default 5)")
    load.add_argument("--rate", type=float, default=10.0,
                      help="messages per second over all devices; 0 = as fast as possible")
    stop = load.add_mutually_exclusive_group()
    stop.add_argument("--count", type=int, help="stop after this many messages")
    stop.add_argument("--duration", type=float, help="stop after this many seconds")
    load.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="default 1")
    load.add_argument("--processes", type=int, default=1,
                      help="publish from this many processes, each with its own connection, "
                      "its share of the devices, the rate and the messages (default 1; one "
                      "Python process tops out at several thousand QoS 1 msg/s)")
    data = p.add_argument_group("data")
    data.add_argument("--seed", type=int, default=1, help="same seed, same devices and readings")
    data.add_argument("--anomaly-rate", type=float, default=0.01,
                      help="share of readings with an anomaly (default 0.01)")
    data.add_argument("--jitter", type=float, default=0.0, metavar="DEGREES",
                      help="random location jitter around each device's home")
    args = p.parse_args(argv)
    if args.count is None and args.duration is None:
        args.count = 100
    if args.devices < 1 or args.rate < 0 or not 0 <= args.anomaly_rate <= 1:
        p.error("--devices must be >= 1, --rate >= 0 and --anomaly-rate within 0..1")
    if not 1 <= args.processes <= args.devices:
        p.error("--processes must be from 1 to --devices (each process plays whole devices)")
    if args.duration is not None and not args.rate:
        p.error("--duration needs a --rate above 0")
    return args


def stack_outputs(args: argparse.Namespace) -> dict:
    if args.outputs:
        with open(args.outputs, encoding="utf-8") as f:
            return json.load(f)
    if args.stack:
        command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack",
                   args.stack]
        try:
            done = subprocess.run(  # noqa: S603 - the pulumi CLI, arguments from our flags
                command, capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            raise SystemExit("error: --stack needs the Pulumi CLI; use --outputs or "
                             "--host/--username/--password instead") from None
        if done.returncode:
            raise SystemExit(f"error: {' '.join(command)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout)
    return {}


def broker_from(args: argparse.Namespace) -> Broker:
    outputs = stack_outputs(args)
    try:
        url = parse_mqtt_url(args.url or outputs.get("mqttUrl") or "tcp://localhost:1883",
                             BROKER_SCHEMES)
    except ValueError as error:
        raise SystemExit(f"error: --url: {error}") from None
    ca_file = args.cafile
    if url.tls and not ca_file and outputs.get("mqttCaCertificate"):
        # The stack's own broker: trust its CA, from the stack outputs.
        with tempfile.NamedTemporaryFile("w", suffix="-ca.pem", delete=False) as f:
            f.write(outputs["mqttCaCertificate"])
        atexit.register(os.unlink, f.name)
        ca_file = f.name
    if args.cafile and not url.tls:
        raise SystemExit(f"error: --cafile is for TLS; {url} is plain (use ssl://, mqtts:// "
                         "or wss://)")
    return Broker(
        host=args.host or url.host,
        port=args.port or url.port,
        username=args.username or outputs.get("mqttDeviceUsername"),
        password=args.password or os.environ.get("MQTT_PASSWORD")
        or outputs.get("mqttDevicePassword"),
        client_id=f"simulator-{os.getpid()}",
        tls=url.tls,
        ca_file=ca_file,
        websocket=url.websocket,
    )


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` whole shares differing by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def messages(args: argparse.Namespace, part: int = 0, parts: int = 1) -> Iterator[dict]:
    """Process `part` of `parts`: every parts-th device of the one fleet `--seed` makes, and
    its share of the messages; so the devices and their readings do not depend on how many
    processes publish them."""
    devices = make_devices(args.devices, args.seed, args.anomaly_rate, args.jitter)[part::parts]
    stream = (device.reading() for device in itertools.cycle(devices))
    total = args.count if args.count is not None else int(args.duration * args.rate)
    return itertools.islice(stream, shares(total, parts)[part])


def publish_part(args: argparse.Namespace, broker: Broker, part: int, parts: int
                 ) -> PublishStats:
    """One process's connection (its own client id), devices, messages and rate."""
    publisher = Publisher(dataclasses.replace(broker, client_id=f"{broker.client_id}-{part}"),
                          qos=args.qos)
    publisher.connect()
    try:
        return publisher.run(args.topic, messages(args, part, parts), args.rate / parts)
    finally:
        publisher.close()


def publish_in_processes(args: argparse.Namespace, broker: Broker) -> PublishStats:
    """--processes N: N publishers at once; the counts add up, the time is the slowest's."""
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        parts = [pool.submit(publish_part, args, broker, i, args.processes)
                 for i in range(args.processes)]
        results = [part.result() for part in parts]
    return PublishStats(sent=sum(r.sent for r in results),
                        acknowledged=sum(r.acknowledged for r in results),
                        failed=sum(r.failed for r in results),
                        seconds=max(r.seconds for r in results))


def show_progress(stats: PublishStats) -> None:
    print(f"\rsent {stats.sent}  acknowledged {stats.acknowledged}  failed {stats.failed}  "
          f"{stats.rate:.0f} msg/s", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    broker = broker_from(args)
    if args.processes > 1:
        print(f"{time.strftime('%H:%M:%S')} publishing to {broker.url} {args.topic} from "
              f"{args.processes} processes with QoS {args.qos}", file=sys.stderr)
        try:
            stats = publish_in_processes(args, broker)
        except ConnectError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"sent {stats.sent}, acknowledged {stats.acknowledged}, failed {stats.failed}, "
              f"{stats.rate:.1f} msg/s over {stats.seconds:.1f} s")
        return 0 if stats.failed == 0 else 1
    publisher = Publisher(broker, qos=args.qos)
    try:
        publisher.connect()
    except ConnectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.strftime("%H:%M:%S")
    print(f"{started} publishing to {broker.url} {args.topic} as "
          f"{broker.username or 'anonymous'} with QoS {args.qos}", file=sys.stderr)
    try:
        stats = publisher.run(args.topic, messages(args), args.rate, show_progress)
    except KeyboardInterrupt:
        stats = publisher.stats
    finally:
        publisher.close()
    print(file=sys.stderr)
    print(f"sent {stats.sent}, acknowledged {stats.acknowledged}, failed {stats.failed}, "
          f"{stats.rate:.1f} msg/s over {stats.seconds:.1f} s")
    return 0 if stats.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
