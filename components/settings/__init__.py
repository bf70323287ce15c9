"""Typed stack settings: read once from the stack config into frozen dataclasses and validated
before any resource is registered, so a bad value costs nothing but one clear message.

The package: `model` (the dataclasses the components take), `reader` (typed values with every
problem recorded), `files` (key, CA, truststore and jar files), `loaders` (one per service),
`checks` (rules that span services). Its names are re-exported here."""

from __future__ import annotations

from components.settings.files import (
    JKS_MAGIC,
    MIN_RSA_BITS,
    KeyFileError,
    KeyMaterial,
    load_ca_bundle,
    load_private_key,
    load_truststore,
    locate_mqtt_source_plugin,
    locate_snowflake_jar,
    pem_body,
    project_path,
)
from components.settings.loaders import (
    ENVIRONMENT_NAME,
    ENVIRONMENT_TIERS,
    WAREHOUSE_SIZES,
    environment_name_for,
    load_settings,
)
from components.settings.model import (
    PROJECT_ROOT,
    BroughtTls,
    CaFile,
    ConfigSource,
    ConnectorJar,
    ContainerPlacement,
    DockerHost,
    Endpoint,
    HttpsFront,
    KafkaSettings,
    LensesSettings,
    MetabaseSettings,
    Mode,
    MqttSettings,
    MqttSource,
    PostgresSettings,
    Settings,
    SettingsError,
    SnowflakeKeySlot,
    SnowflakeSettings,
    TopicSettings,
)
from components.settings.reader import (
    SECRET_KEYS,
    parse_duration_ms,
)

__all__ = [
    "ENVIRONMENT_NAME",
    "ENVIRONMENT_TIERS",
    "JKS_MAGIC",
    "MIN_RSA_BITS",
    "PROJECT_ROOT",
    "SECRET_KEYS",
    "WAREHOUSE_SIZES",
    "BroughtTls",
    "CaFile",
    "ConfigSource",
    "ConnectorJar",
    "ContainerPlacement",
    "DockerHost",
    "Endpoint",
    "HttpsFront",
    "KafkaSettings",
    "KeyFileError",
    "KeyMaterial",
    "LensesSettings",
    "MetabaseSettings",
    "Mode",
    "MqttSettings",
    "MqttSource",
    "PostgresSettings",
    "Settings",
    "SettingsError",
    "SnowflakeKeySlot",
    "SnowflakeSettings",
    "TopicSettings",
    "environment_name_for",
    "load_ca_bundle",
    "load_private_key",
    "load_settings",
    "load_truststore",
    "locate_mqtt_source_plugin",
    "locate_snowflake_jar",
    "parse_duration_ms",
    "pem_body",
    "project_path",
]
