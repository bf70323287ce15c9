"""The Kafka topics of the pipeline, with per-stack partitions, replication and retention."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kafka as kafka

from components.settings import TopicSettings
from components.streams import ALL_TOPICS

__all__ = ["MAX_MESSAGE_BYTES", "Topics", "TopicsArgs", "topic_config"]

MAX_MESSAGE_BYTES = 1_000_012
"""Kafka's default message size limit, stated so the broker cannot drift from it."""


def topic_config(s: TopicSettings) -> dict[str, str]:
    """Topic-level configs as the broker expects them: every value a string."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(s.retention_ms),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "compression.type": s.compression,
        "min.insync.replicas": str(s.min_insync_replicas),
    }


@dataclass(frozen=True)
class TopicsArgs:
    settings: TopicSettings
    """Partitions, replication and retention (the stack's topic* settings)."""
    provider: kafka.Provider
    """The cluster's explicit provider (KafkaCluster.provider)."""
    protect: bool
    """A protected topic cannot be replaced, so lowering its partitions (which Kafka can only
    do by deleting the topic) fails instead of losing data."""
    names: tuple[str, ...] = ALL_TOPICS
    """The topics to declare: device_data and one per derived stream."""


class Topics(pulumi.ComponentResource):
    names: pulumi.Output[list[str]]
    """Topic names, once every topic exists."""

    def __init__(
        self, name: str, args: TopicsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:topics:Topics", name, None, opts)
        s = args.settings
        self.topics = {
            topic: kafka.Topic(
                f"{name}-{topic}",
                name=topic,
                partitions=s.partitions,
                replication_factor=s.replication_factor,
                config=topic_config(s),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.provider, protect=args.protect
                ),
            )
            for topic in args.names
        }
        self.names = pulumi.Output.all(*[t.name for t in self.topics.values()])
        self.register_outputs({"names": self.names})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"topics": self.names}
