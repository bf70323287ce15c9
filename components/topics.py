"""The pipeline's Kafka topics and its dead-letter topics, with per-stack partitions,
replication and retention."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kafka as kafka

from components.settings import MqttSource, Settings, TopicSettings
from components.streams import ALL_TOPICS, DEVICE_DEAD_LETTER_TOPIC, SINK_DEAD_LETTER_TOPIC

__all__ = ["DEAD_LETTER_PARTITIONS", "MAX_MESSAGE_BYTES", "DeadLetterTopics", "Topics",
           "TopicsArgs", "topic_config"]

MAX_MESSAGE_BYTES = 1_000_012
"""Kafka's default message size limit, stated so the broker cannot drift from it."""
DEAD_LETTER_PARTITIONS = 1
"""A dead-letter topic takes a trickle of records that someone reads and replays in order."""


def topic_config(s: TopicSettings, dead_letter: bool = False) -> dict[str, str]:
    """Topic-level configs as the broker expects them: every value a string. A dead-letter
    topic differs only in its retention."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(s.dead_letter_retention_ms if dead_letter else s.retention_ms),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "compression.type": s.compression,
        "min.insync.replicas": str(s.min_insync_replicas),
    }


@dataclass(frozen=True)
class DeadLetterTopics:
    """The dead-letter topics a stack's connectors write to, decided once for the topics
    and the connectors: a topic is declared exactly when a connector config names it."""

    source: str | None
    """This project's MQTT source's (the other MQTT sources have no dead-letter routing)."""
    sink: str | None
    """The Snowflake sink's, when it exists and snowflakeDeadLetterQueue is on."""

    @classmethod
    def for_stack(cls, settings: Settings) -> DeadLetterTopics:
        own_source = settings.kafka.mqtt_source is MqttSource.HEALTH_PIPELINE
        sf = settings.snowflake
        return cls(DEVICE_DEAD_LETTER_TOPIC if own_source else None,
                   SINK_DEAD_LETTER_TOPIC if sf.enabled and sf.dead_letter_queue else None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.source, self.sink) if name)


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
    dead_letter_names: tuple[str, ...] = ()
    """Dead-letter topics to declare (DeadLetterTopics.names): DEAD_LETTER_PARTITIONS
    partitions and topicDeadLetterRetention, the rest as the other topics."""

    @classmethod
    def for_stack(cls, settings: Settings, provider: kafka.Provider) -> TopicsArgs:
        return cls(settings.topics, provider, settings.protect,
                   dead_letter_names=DeadLetterTopics.for_stack(settings).names)


class Topics(pulumi.ComponentResource):
    names: pulumi.Output[list[str]]
    """Topic names, dead-letter topics included, once every topic exists."""

    def __init__(
        self, name: str, args: TopicsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:topics:Topics", name, None, opts)
        s = args.settings
        declared = [(topic, s.partitions, False) for topic in args.names]
        declared += [(topic, DEAD_LETTER_PARTITIONS, True) for topic in args.dead_letter_names]
        self.topics = {
            topic: kafka.Topic(
                f"{name}-{topic}",
                name=topic,
                partitions=partitions,
                replication_factor=s.replication_factor,
                config=topic_config(s, dead_letter),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.provider, protect=args.protect
                ),
            )
            for topic, partitions, dead_letter in declared
        }
        self.names = pulumi.Output.all(*[t.name for t in self.topics.values()])
        self.register_outputs({"names": self.names})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"topics": self.names}
