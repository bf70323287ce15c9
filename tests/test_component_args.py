"""Every component's Args says what each field is for (a docstring right under every field of
every dataclass named *Args in components/, read from the source so a new field without one
fails here), and refuses what cannot work with the field and the setting to change."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pulumi
import pytest

from components.connector_keys import ConnectorKeysArgs
from components.docker_host import ContainerDefaults, DockerEngine
from components.kafka import KafkaClusterArgs
from components.lenses import LensesArgs
from components.metabase import MetabaseArgs
from components.mqtt import MqttBrokerArgs
from components.postgres import PostgresServerArgs
from components.processors import SqlProcessors, SqlProcessorsArgs
from components.settings import Mode, Settings, SnowflakeKeySlot, load_settings
from devtools.harness import PROJECT, USER_SECRETS, merge_config

COMPONENTS = Path(__file__).resolve().parent.parent / "components"


def _args_classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for path in sorted(COMPONENTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [(f"{path.relative_to(COMPONENTS.parent)}:{node.name}", node)
                  for node in ast.walk(tree)
                  if isinstance(node, ast.ClassDef) and node.name.endswith("Args")]
    return found


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass")
        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "dataclass")
        for d in node.decorator_list
    )


def _undocumented_fields(node: ast.ClassDef) -> list[str]:
    missing = []
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(statement.annotation):
            continue  # not a field
        documented = (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                      and isinstance(following.value.value, str)
                      and following.value.value.strip())
        if not documented:
            missing.append(statement.target.id)
    return missing


ARGS = _args_classes()


def test_the_components_have_args_classes() -> None:
    """The scan sees the Args classes at all (a wrong path would make every check vacuous)."""
    names = {name.split(":")[1] for name, _ in ARGS}
    assert {"MqttBrokerArgs", "KafkaClusterArgs", "ConnectorArgs", "ProcessorArgs",
            "SqlProcessorsArgs", "TopicsArgs"} <= names


@pytest.mark.parametrize(("where", "node"), ARGS, ids=[where for where, _ in ARGS])
def test_every_args_field_has_a_docstring(where: str, node: ast.ClassDef) -> None:
    assert _is_dataclass(node), f"{where} is not a dataclass"
    assert not _undocumented_fields(node), (
        f"{where}: fields without a docstring under them: {_undocumented_fields(node)}")


# --- guards -------------------------------------------------------------------------------------
# An Args that cannot work is refused when it is made, before anything is registered, with the
# field to fix and the stack setting behind it.

ENGINE = cast(DockerEngine, object())
"""Stands in for a DockerEngine: the guards only ask whether there is one."""
COMPONENT = cast(Any, object())
"""Stands in for a component another one reads from (Postgres, Kafka, databases)."""


@pytest.fixture(scope="module")
def dev() -> Settings:
    config, secret_keys = merge_config("dev", None, USER_SECRETS["dev"])
    pulumi.runtime.set_all_config(config, secret_keys)
    return load_settings(pulumi.Config(PROJECT), "dev")


def refused(make: Callable[[], object], *parts: str) -> str:
    """The message `make` is refused with, checked to hold every one of `parts`."""
    with pytest.raises(ValueError) as raised:
        make()
    message = str(raised.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def test_a_broker_in_a_container_without_an_engine_names_engine_and_setting(dev) -> None:
    refused(lambda: MqttBrokerArgs(dev.mqtt, None, ContainerDefaults.of(dev)),
            "MqttBrokerArgs.engine:", "container mode needs a Docker engine", "mqttDockerHost")


def test_an_external_broker_without_passwords_names_the_missing_settings(dev) -> None:
    external = replace(dev.mqtt, mode=Mode.EXTERNAL, placement=None,
                       device_password=cast(Any, "device-secret"), connector_password=None)
    refused(lambda: MqttBrokerArgs(external, None, ContainerDefaults.of(dev)),
            "MqttBrokerArgs.settings:", "an external broker needs both MQTT passwords",
            "set mqttConnectorPassword (")


@pytest.mark.parametrize("key", ["mqttDeviceUsername", "mqttConnectorUsername",
                                 "mqttMonitorUsername"])
def test_no_broker_user_may_take_the_healthchecks_login(dev, key) -> None:
    field = {"mqttDeviceUsername": "device_username",
             "mqttConnectorUsername": "connector_username",
             "mqttMonitorUsername": "monitor_username"}[key]
    taken = replace(dev.mqtt, **{field: "healthcheck"})
    refused(lambda: MqttBrokerArgs(taken, ENGINE, ContainerDefaults.of(dev)),
            "MqttBrokerArgs.settings:", f"{key} 'healthcheck'", "choose another")


def test_kafka_in_a_container_without_an_engine_or_jar_names_the_field(dev) -> None:
    defaults = ContainerDefaults.of(dev)
    refused(lambda: KafkaClusterArgs(dev.kafka, None, defaults, None),
            "KafkaClusterArgs.engine:", "kafkaDockerHost", "kafkaMode")
    refused(lambda: KafkaClusterArgs(dev.kafka, ENGINE, defaults, None),
            "KafkaClusterArgs.snowflake_jar:", "scripts/fetch-connectors")


def test_postgres_guards_name_the_field_and_the_setting(dev) -> None:
    defaults = ContainerDefaults.of(dev)
    refused(lambda: PostgresServerArgs(dev.postgres, None, defaults),
            "PostgresServerArgs.engine:", "postgresDockerHost")
    external = replace(dev.postgres, mode=Mode.EXTERNAL, placement=None, endpoint=None,
                       admin_password=None)
    refused(lambda: PostgresServerArgs(external, None, defaults),
            "PostgresServerArgs.settings:", "postgresEndpoint and postgresAdminPassword")


def test_metabase_in_a_container_names_the_missing_engine_or_database(dev) -> None:
    defaults = ContainerDefaults.of(dev)
    refused(lambda: MetabaseArgs(dev.metabase, None, defaults, COMPONENT, COMPONENT),
            "MetabaseArgs.engine:", "metabaseDockerHost")
    refused(lambda: MetabaseArgs(dev.metabase, ENGINE, defaults, None, COMPONENT),
            "MetabaseArgs.postgres:", "needs its database")
    refused(lambda: MetabaseArgs(dev.metabase, ENGINE, defaults, COMPONENT, None),
            "MetabaseArgs.databases:")


def test_lenses_guards_name_the_field_and_the_setting(dev) -> None:
    def args(settings, engine=ENGINE) -> LensesArgs:
        return LensesArgs(settings, engine, ContainerDefaults.of(dev), "dev", COMPONENT,
                          COMPONENT, COMPONENT, dev.kafka)

    refused(lambda: args(replace(dev.lenses, mode=Mode.DISABLED)),
            "LensesArgs.settings:", "lensesMode")
    refused(lambda: args(dev.lenses, engine=None),
            "LensesArgs.engine:", "Docker engine for its agent", "lensesDockerHost")
    external = replace(dev.lenses, mode=Mode.EXTERNAL, hq_agents_endpoint=None)
    refused(lambda: args(external), "LensesArgs.settings:",
            "external HQ needs lensesHqAgentsAddress, lensesAgentKey and lensesAdminPassword",
            "set lensesHqAgentsAddress and lensesAgentKey and lensesAdminPassword")


def test_key_slots_guards_name_the_field_and_the_setting() -> None:
    generated = SnowflakeKeySlot(1, "generated", None, None)
    unread = SnowflakeKeySlot(2, "keys/rsa_key.p8", None, None)
    empty = SnowflakeKeySlot(2, "none", None, None)
    refused(lambda: ConnectorKeysArgs((generated, unread), 1),
            "ConnectorKeysArgs.slots:", "key slot 2 (keys/rsa_key.p8) was not loaded",
            "snowflakeKey2")
    refused(lambda: ConnectorKeysArgs((generated, empty), 2),
            "ConnectorKeysArgs.active:", "active key slot 2 is empty", "snowflakeActiveKey")


def test_processor_guards_name_the_field(tmp_path: Path) -> None:
    def args(**changes: Any) -> SqlProcessorsArgs:
        return SqlProcessorsArgs(**{"hq_url": "http://hq", "environment": "dev",
                                    "username": "admin", "password": "pw", **changes})

    refused(lambda: args(environment=""), "SqlProcessorsArgs.environment",
            "lensesEnvironmentName")
    refused(lambda: args(streams=()), "SqlProcessorsArgs.streams")
    # The files are read before the component registers anything, so no engine is needed.
    refused(lambda: SqlProcessors("p", args(sql_dir=tmp_path)),
            "SqlProcessorsArgs.sql_dir:", "has no SQL processor file", str(tmp_path))
    broken = tmp_path / "health_data.avsc"
    broken.write_text("{not json")
    refused(lambda: SqlProcessors("p", args(value_schema=broken)),
            "SqlProcessorsArgs.value_schema:", str(broken))
