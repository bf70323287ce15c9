"""Lenses SQL processors as Pulumi resources: a dynamic provider over the Lenses 6 HQ API, and a
component that declares one processor per derived stream from the SQL files in sql/processors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import Input
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.lenses_api import declared_view
from components.lenses_resources import (
    DEVICE_VALUE_SCHEMA,
    HqProvider,
    HqResource,
    TopicFormat,
    TopicFormatArgs,
    device_value_schema,
)
from components.streams import (
    DERIVED_STREAMS,
    DEVICE_KEY_TYPE,
    DEVICE_TOPIC,
    DEVICE_VALUE_TYPE,
    DerivedStream,
)

__all__ = [
    "SQL_DIR",
    "Processor",
    "ProcessorArgs",
    "ProcessorProvider",
    "SqlProcessors",
    "SqlProcessorsArgs",
    "read_sql",
]

SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "processors"

def read_sql(sql_dir: Path, stream: DerivedStream) -> str:
    """The processor SQL for `stream`, read at program time so a missing file stops the preview
    instead of a half-applied update."""
    path = sql_dir / f"{stream.name}.sql"
    if not path.is_file():
        raise ValueError(
            f"stream {stream.name!r} has no SQL processor file: {path} does not exist "
            f"(every stream in DERIVED_STREAMS needs <sql_dir>/<name>.sql)"
        )
    sql = path.read_text(encoding="utf-8").strip()
    if not sql:
        raise ValueError(f"stream {stream.name!r}: SQL processor file {path} is empty")
    return sql


class ProcessorProvider(HqProvider):
    """CRUD for one Lenses SQL processor (see HqProvider for what the provider holds)."""

    INPUTS = ("hq_url", "hq_ca_pem", "environment", "username", "password", "name", "sql",
              "description")
    REPLACED_BY = ("hq_url", "environment", "name", "sql", "description")
    """Lenses has no update for a processor, so any change to what it is or where it runs means
    a new one. Credentials are not among these: they only say how Pulumi logs in."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        processor_id = client.create(
            props["environment"], props["name"], props["sql"], props.get("description") or ""
        )
        return CreateResult(processor_id, {**self._inputs(props), "processor_id": processor_id})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live name, SQL and description, so a refresh shows an edit made in Lenses as
        drift and the next update replaces the processor with the declared one."""
        live = self._client(props).get(props["environment"], id_)
        if live is None:
            return ReadResult(None, {})
        outs = {**self._inputs(props), **declared_view(live), "processor_id": id_}
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only credentials reach here (see REPLACED_BY): record them for the next login."""
        return UpdateResult({**self._inputs(news), "processor_id": id_})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._client(props).delete(props["environment"], id_)


@dataclass(frozen=True)
class ProcessorArgs:
    hq_url: Input[str]
    """HQ's HTTP URL, as seen from the machine running Pulumi."""
    environment: Input[str]
    """The Lenses environment (agent) that runs the processor."""
    username: Input[str]
    """HQ login of a user allowed to manage processors in `environment`."""
    password: Input[str]
    """Secret: that user's password."""
    name: Input[str]
    """Name in Lenses; unique per environment."""
    sql: Input[str]
    """The processor's Lenses SQL; a change replaces the processor."""
    description: Input[str] = ""
    """Shown in Lenses; empty leaves it out."""
    hq_ca_pem: Input[str] = ""
    """An https:// HQ's CA (PEM); empty trusts the system's CAs."""


class Processor(HqResource, module="lenses", name="Processor"):
    """One Lenses SQL processor (IN_PROC: it runs inside the agent)."""

    processor_id: pulumi.Output[str]
    """Lenses' id of the processor."""

    def __init__(
        self,
        resource_name: str,
        args: ProcessorArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: ProcessorProvider | None = None,
    ) -> None:
        super().__init__(provider or ProcessorProvider(), resource_name, args, opts,
                         computed=("processor_id",))


@dataclass(frozen=True)
class SqlProcessorsArgs:
    hq_url: Input[str]
    """HQ's HTTP URL, as seen from the machine running Pulumi."""
    environment: str
    """The Lenses environment whose agent runs the processors."""
    username: Input[str]
    """HQ login of a user allowed to manage processors in `environment`."""
    password: Input[str]
    """Secret; HQ login of a user allowed to manage processors in `environment`."""
    hq_ca_pem: Input[str] = ""
    """An https:// HQ's CA (PEM); empty trusts the system's CAs."""
    streams: tuple[DerivedStream, ...] = DERIVED_STREAMS
    """One processor per stream, from device_data into the stream's topic."""
    sql_dir: Path = SQL_DIR
    """Where `<stream name>.sql` files live."""
    value_schema: Path = DEVICE_VALUE_SCHEMA
    """The Avro schema of device_data's JSON values, declared to Lenses before any processor."""
    after: tuple[pulumi.Resource, ...] = ()
    """What the input format and every processor wait for (the agent, the topics); a
    component's own depends_on does not reach its children."""

    def __post_init__(self) -> None:
        if not self.environment:
            raise ValueError("SqlProcessorsArgs.environment must name a Lenses environment "
                             "(lensesEnvironmentName)")
        if not self.streams:
            raise ValueError("SqlProcessorsArgs.streams must list at least one stream")


class SqlProcessors(pulumi.ComponentResource):
    """The Lenses SQL processors that split `device_data` into one topic per vital sign."""

    processor_ids: pulumi.Output[dict[str, str]]
    """Lenses processor id per stream name."""

    def __init__(
        self, name: str, args: SqlProcessorsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Every file is read before anything is registered: a missing one registers nothing.
        try:
            sqls = {stream.name: read_sql(args.sql_dir, stream) for stream in args.streams}
        except ValueError as error:
            raise ValueError(f"SqlProcessorsArgs.sql_dir: {error}") from None
        try:
            schema = device_value_schema(args.value_schema)
        except ValueError as error:
            raise ValueError(f"SqlProcessorsArgs.value_schema: {error}") from None
        super().__init__("healthpipe:lenses:SqlProcessors", name, None, opts)
        # A processor is checked against its input's schema when it is created, and device_data
        # may hold no record yet: Lenses is told its formats first instead of guessing them
        # from a first message.
        hq = {"hq_url": args.hq_url, "hq_ca_pem": args.hq_ca_pem,
              "environment": args.environment, "username": args.username,
              "password": args.password}
        device_format = TopicFormat(
            f"{name}-{DEVICE_TOPIC}-format",
            TopicFormatArgs(
                **hq,
                topic=DEVICE_TOPIC,
                key_type=DEVICE_KEY_TYPE,
                value_type=DEVICE_VALUE_TYPE,
                value_schema=schema,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        processors = {
            stream.name: Processor(
                f"{name}-{stream.name}",
                ProcessorArgs(
                    **hq,
                    name=stream.name,
                    sql=sqls[stream.name],
                    description=f"{stream.name} readings from {DEVICE_TOPIC} into "
                    f"{stream.topic} (managed by Pulumi)",
                ),
                pulumi.ResourceOptions(parent=self,
                                       depends_on=[*args.after, device_format]),
            )
            for stream in args.streams
        }
        self.processor_ids = pulumi.Output.all(
            **{key: processor.processor_id for key, processor in processors.items()}
        )
        self.register_outputs({"processorIds": self.processor_ids})

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        return {"sqlProcessors": self.processor_ids}
