"""Rules that span services, checked once every service is loaded."""

from __future__ import annotations

from components.settings.model import (
    ContainerPlacement,
    Mode,
    Settings,
)
from components.settings.reader import (
    Reader,
)


def check_cross_service(r: Reader, s: Settings) -> None:
    """Rules that span services: published ports per engine, and engine names."""
    slugs: dict[str, str] = {}
    for host in s.docker_hosts():
        if slugs.setdefault(host.slug, host.url) != host.url:
            r.problems.append(
                f"Docker hosts {slugs[host.slug]!r} and {host.url!r} are different URLs for "
                f"the same host '{host.address}'; use one URL per engine in every "
                "<service>DockerHost"
            )
    published: dict[tuple[str, int], str] = {}
    candidates: list[tuple[ContainerPlacement | None, str, int]] = [
        (s.mqtt.placement, "mqttPort", s.mqtt.port),
        (s.mqtt.placement, "mqttWebsocketPort", s.mqtt.websocket_port),
        (s.kafka.placement, "kafkaBrokerPort", s.kafka.broker_port),
        (s.kafka.placement, "kafkaSchemaRegistryPort", s.kafka.schema_registry_port),
        (s.kafka.placement, "kafkaConnectPort", s.kafka.connect_port),
        (s.postgres.placement, "postgresPort", s.postgres.port),
        (s.metabase.placement, "metabasePort", s.metabase.port),
    ]
    if s.lenses.mode is Mode.CONTAINER:
        candidates.append((s.lenses.placement, "lensesHqPort", s.lenses.hq_port))
    for placement, key, port in candidates:
        if placement is None:
            continue
        slot = (placement.docker_host.url, port)
        if slot in published:
            r.fail(key, port, f"host port {port} on {placement.docker_host.url} is already "
                              f"taken by {published[slot]}; choose another port")
        else:
            published[slot] = key
