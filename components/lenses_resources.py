"""What the program keeps in Lenses HQ besides the processors, as dynamic-provider resources over
the HQ API (components/lenses_api.py): this stack's environment, whose agent key is the only HQ
credential the agent gets, and the key and value formats of a topic, which SQL processors need
before they can be created on a topic that holds no record yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import Input
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.dynamic import ArgsResource, RestProvider
from components.lenses_api import LensesClient

__all__ = [
    "DEVICE_VALUE_SCHEMA",
    "Environment",
    "EnvironmentArgs",
    "EnvironmentProvider",
    "HqProvider",
    "HqResource",
    "TopicFormat",
    "TopicFormatArgs",
    "TopicFormatProvider",
    "device_value_schema",
]

DEVICE_VALUE_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "health_data.avsc"
"""The seed's HealthData Avro schema: what every message on device_data holds."""


def device_value_schema(path: Path = DEVICE_VALUE_SCHEMA) -> str:
    """The schema as compact JSON text, read at program time so a broken file stops the
    preview."""
    try:
        return json.dumps(json.loads(path.read_text(encoding="utf-8")), separators=(",", ":"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"the device_data value schema {path} cannot be read: {error}") from None


class HqProvider(RestProvider):
    """A provider over HQ (see RestProvider): every operation logs in afresh with the
    resource's own HQ URL, CA and login, the password masked from the start."""

    def _client(self, props: dict[str, Any]) -> LensesClient:
        client = LensesClient(self._api(props["hq_url"], secrets=(props["password"],),
                                        ca_pem=props.get("hq_ca_pem") or ""))
        client.login(props["username"], props["password"])
        return client

    def _comparable(self, value: Any) -> Any:
        """Surrounding whitespace is not a change: HQ may trim what it stores."""
        return value.strip() if isinstance(value, str) else value


class HqResource(ArgsResource):
    """A resource over HQ (see ArgsResource): its Args hold the HQ login, whose password is
    secret. A subclass names itself with `module="lenses"` and `name=...`."""

    def __init__(
        self,
        provider: HqProvider,
        resource_name: str,
        args: Any,
        opts: pulumi.ResourceOptions | None = None,
        computed: tuple[str, ...] = (),
        secret_outputs: tuple[str, ...] = (),
    ) -> None:
        super().__init__(provider, resource_name, args, opts, secret_inputs=("password",),
                         computed=computed, secret_outputs=secret_outputs)


class EnvironmentProvider(HqProvider):
    """One HQ environment. Its agent key exists only in the create answer, so it is kept in the
    state; a new name (or tier, which this provider does not update) means a new environment
    and a new key, and the agent is replaced with it."""

    INPUTS = ("hq_url", "hq_ca_pem", "username", "password", "name", "tier")
    REPLACED_BY = ("hq_url", "name", "tier")

    def create(self, props: dict[str, Any]) -> CreateResult:
        key = self._client(props).create_environment(props["name"], props["tier"])
        return CreateResult(props["name"], {**self._inputs(props), "agent_key": key})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Gone when HQ no longer has it; the tier as HQ has it, so a change made in the UI
        shows as drift."""
        live = self._client(props).get_environment(id_)
        if live is None:
            return ReadResult(None, {})
        outs = {**self._inputs(props), "name": live.get("name") or id_,
                "tier": live.get("tier") or props.get("tier"), "agent_key": props.get("agent_key")}
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only credentials reach here: record them for the next login."""
        return UpdateResult({**self._inputs(news), "agent_key": olds.get("agent_key")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._client(props).delete_environment(id_)


@dataclass(frozen=True)
class EnvironmentArgs:
    hq_url: Input[str]
    """HQ's HTTP URL, as seen from the machine running Pulumi."""
    username: Input[str]
    """An HQ administrator, who may create environments."""
    password: Input[str]
    """Secret; an HQ administrator's login."""
    name: Input[str]
    """1-63 lowercase letters, digits and inner hyphens (an HQ resource name)."""
    tier: Input[str] = "development"
    """One of components.settings.ENVIRONMENT_TIERS."""
    hq_ca_pem: Input[str] = ""
    """An https:// HQ's CA (PEM); empty trusts the system's CAs."""


class Environment(HqResource, module="lenses", name="Environment"):
    """This stack's environment in Lenses HQ, and the key its agent registers with."""

    agent_key: pulumi.Output[str]
    """Secret: what the agent presents to HQ's agent port; nothing else of HQ's is given to it."""

    def __init__(
        self,
        resource_name: str,
        args: EnvironmentArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: EnvironmentProvider | None = None,
    ) -> None:
        super().__init__(provider or EnvironmentProvider(), resource_name, args, opts,
                         computed=("agent_key",), secret_outputs=("agent_key",))


class TopicFormatProvider(HqProvider):
    """The key and value formats (and value schema) Lenses keeps for one topic, through the
    agent's topic-metadata endpoint. Posting again replaces them, so a changed format is an
    update in place."""

    INPUTS = ("hq_url", "hq_ca_pem", "environment", "username", "password", "topic",
              "key_type", "value_type", "value_schema")
    REPLACED_BY = ("hq_url", "environment", "topic")

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._post(props)
        return CreateResult(f"{props['environment']}/{props['topic']}", self._inputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What Lenses holds now. A schema it stores with other spacing or key order is the same
        schema; a different one, or other formats, show as drift."""
        live = self._client(props).get_topic_metadata(props["environment"], props["topic"])
        if live is None:
            return ReadResult(None, {})
        schema = live.get("valueSchema") or ""
        if _json(schema) == _json(props.get("value_schema") or ""):
            schema = props.get("value_schema") or ""
        outs = {**self._inputs(props), "key_type": live.get("keyType") or "",
                "value_type": live.get("valueType") or "", "value_schema": schema}
        return ReadResult(id_, outs, self._inputs(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._post(news)
        return UpdateResult(self._inputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._client(props).delete_topic_metadata(props["environment"], props["topic"])

    def _post(self, props: dict[str, Any]) -> None:
        body = {"topicName": props["topic"], "keyType": props["key_type"],
                "valueType": props["value_type"]}
        if props.get("value_schema"):
            body["valueSchema"] = props["value_schema"]
        self._client(props).set_topic_metadata(props["environment"], body)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class TopicFormatArgs:
    hq_url: Input[str]
    """HQ's HTTP URL, as seen from the machine running Pulumi."""
    environment: Input[str]
    """The Lenses environment whose agent reads the topic."""
    username: Input[str]
    """HQ login of a user allowed to manage topics in `environment`."""
    password: Input[str]
    """Secret: that user's password."""
    topic: str
    """The Kafka topic whose formats are declared."""
    key_type: str
    """Lenses' name of the key format, e.g. STRING."""
    value_type: str
    """Lenses' name of the value format, e.g. JSON."""
    value_schema: str = ""
    """For structured values: the schema in Avro's syntax (Lenses uses it for JSON too)."""
    hq_ca_pem: Input[str] = ""
    """An https:// HQ's CA (PEM); empty trusts the system's CAs."""


class TopicFormat(HqResource, module="lenses", name="TopicFormat"):
    """How Lenses reads a topic's records, declared rather than guessed from the first one."""

    def __init__(
        self,
        resource_name: str,
        args: TopicFormatArgs,
        opts: pulumi.ResourceOptions | None = None,
        provider: TopicFormatProvider | None = None,
    ) -> None:
        super().__init__(provider or TopicFormatProvider(), resource_name, args, opts)
