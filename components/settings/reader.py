"""Typed reads of the stack config: value parsers, and a reader that records every problem
instead of stopping at the first."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

import pulumi

from components.settings.model import (
    ConfigSource,
    ContainerPlacement,
    DockerHost,
    Endpoint,
    Mode,
)

# --- value parsers ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_REGISTRY_PREFIX = re.compile(
    # A registry is a first path part with a dot or a port, or localhost.
    r"^(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?/|^[a-z0-9-]+:\d+/"
)
HEAP_FLAG = re.compile(r"^-(Xm[sx]\d+[kKmMgG]?|Xss\d+[kKmMgG]?|XX:[+-]?[A-Za-z0-9]+(=\S+)?)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def parse_duration_ms(text: str) -> int:
    """`90s`, `1m`, `12h`, `7d` or `60000ms` to milliseconds; ValueError on anything else."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(text)
    return int(match.group(1)) * _DURATION_MS[match.group(2)]


INFINITE = "infinite"
"""How a retention setting says Kafka's retention.ms -1."""
INFINITE_RETENTION_MS = -1
"""Kafka's retention.ms for "no limit by age": records stay until deleted otherwise (a
compliance team may require it for raw vitals)."""


def parse_retention_ms(text: str) -> int:
    """A topic's retention.ms: a duration as parse_duration_ms takes it, or `infinite` for
    Kafka's -1; ValueError on anything else."""
    if text.strip() == INFINITE:
        return INFINITE_RETENTION_MS
    return parse_duration_ms(text)


def _image_problem(ref: str) -> str | None:
    rest = _REGISTRY_PREFIX.sub("", ref, count=1)
    match = _IMAGE.match(rest)
    if not match:
        return "must be an image reference such as 'postgres:16.4'"
    if not match.group("tag") and not match.group("digest"):
        return "needs an explicit tag (e.g. 'postgres:16.4'); untagged images drift"
    if match.group("tag") == "latest":
        return "must not use the 'latest' tag; pin a version"
    return None


def host_port(text: str) -> Endpoint | None:
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return Endpoint(host, int(port))


def docker_host_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe") and parts.path:
        return None
    if parts.scheme in ("tcp", "ssh") and url_problem(url, ("tcp", "ssh")) is None:
        return None
    return "must be a Docker host URL: unix:///path/to/docker.sock, tcp://host:port or ssh://user@host"


def _ipv4_problem(text: str) -> str | None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return "must be an IPv4 address such as 127.0.0.1 or 0.0.0.0"
    return None


def _show(value: object) -> str:
    """A value as the stack config holds it: true/false, numbers and lists as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


SECRET_KEYS = (
    "mqttDevicePassword",
    "mqttConnectorPassword",
    "kafkaSaslPassword",
    "postgresAdminPassword",
    "lensesAgentKey",
    "lensesLicenseKey",
    "lensesAdminPassword",
    "lensesHqAgentsTruststorePassword",
    "mqttTlsPrivateKey",
    "lensesTlsPrivateKey",
    "metabaseTlsPrivateKey",
    "metabaseAdminPassword",
    "snowflakeAdminPrivateKey",
    "snowflakeAdminPrivateKeyPassphrase",
    "snowflakeKey1Passphrase",
    "snowflakeKey2Passphrase",
    "snowflakeReportingKey1Passphrase",
    "snowflakeReportingKey2Passphrase",
)
"""Keys a user sets with `pulumi config set --secret`; never in plain text."""


def url_problem(url: str, schemes: Sequence[str]) -> str | None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in schemes or not parts.hostname or not _HOST.match(parts.hostname):
        return f"must be a URL like '{schemes[0]}://host:port' (schemes: {', '.join(schemes)})"
    if port == -1:
        return "has an invalid port"
    return None


# --- the reader -----------------------------------------------------------------------------


_Choice = TypeVar("_Choice", bound=StrEnum)


class Reader:
    """Reads typed values and records every problem instead of stopping at the first."""

    def __init__(self, config: ConfigSource, stack: str) -> None:
        self.config = config
        self.stack = stack
        self.problems: list[str] = []
        self.failed: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.config.name}:{key}"

    def fail(self, key: str, value: object, allowed: str) -> None:
        shown = "[secret]" if pulumi.runtime.is_config_secret(self.key(key)) else _show(value)
        self.problems.append(f"{self.key(key)} = {shown!r}: {allowed}")
        self.failed.add(key)

    def raw(self, key: str) -> str:
        value = self.config.get(key)
        if value is None:
            # Pulumi.yaml declares a default for every optional key, so only a CLI older than
            # 3.44 (which ignores those defaults) or a hand-made config gets here.
            self.problems.append(
                f"{self.key(key)} is not set; Pulumi.yaml declares its default, which needs "
                "Pulumi CLI >= 3.44"
            )
            return ""
        return value

    def text(self, key: str, check: Callable[[str], str | None] | None = None) -> str:
        value = self.raw(key)
        if check and value:
            problem = check(value)
            if problem:
                self.fail(key, value, problem)
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.raw(key)
        try:
            number = int(value)
        except ValueError:
            self.fail(key, value, f"must be a whole number from {low} to {high}")
            return low
        if not low <= number <= high:
            self.fail(key, value, f"must be a whole number from {low} to {high}")
        return number

    def port(self, key: str) -> int:
        return self.integer(key, 1, 65535)

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if value.lower() not in ("true", "false"):
            self.fail(key, value, "must be true or false")
        return value.lower() == "true"

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.raw(key)
        if value not in allowed:
            self.fail(key, value, f"must be one of: {', '.join(allowed)}")
        return value

    def member(self, key: str, allowed: Sequence[_Choice]) -> _Choice:
        """One of `allowed` (string enum members); the first after a reported problem."""
        value = self.choice(key, [m.value for m in allowed])
        return next((m for m in allowed if m.value == value), allowed[0])

    def mode(self, key: str, allowed: Sequence[Mode]) -> Mode:
        return self.member(key, allowed)

    def image(self, key: str) -> str:
        return self.text(key, _image_problem)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw(key) or "[]"
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.fail(key, value, "must be a list of strings")
            return ()
        return tuple(items)

    def secret(
        self, key: str, needed_because: str | None, how: str = ""
    ) -> pulumi.Output[str] | None:
        """A secret the user sets (plain-text ones are refused by `plaintext_secrets`); a
        missing one is an error only when `needed_because` says why it is needed."""
        full = self.key(key)
        if not self.config.get(key):
            if needed_because:
                self.problems.append(
                    f"{full} is not set; it is required because {needed_because}. Set it with: "
                    f"pulumi config set --secret --stack {self.stack} {key}{how}"
                )
            return None
        return self.config.get_secret(key)

    def plaintext_secrets(self) -> None:
        """Refuse every secret key stored in plain text, whether this stack reads it or not."""
        for key in SECRET_KEYS:
            if self.config.get(key) and not pulumi.runtime.is_config_secret(self.key(key)):
                self.problems.append(
                    f"{self.key(key)} is stored in plain text; encrypt it with: "
                    f"pulumi config set --secret --stack {self.stack} {key}"
                )

    def placement(
        self, mode: Mode, host_key: str, default_host: str, alias: str
    ) -> ContainerPlacement | None:
        """The engine a container runs on: `host_key` if set, else the stack's dockerHost
        (which load_settings has validated already)."""
        own = self.text(host_key, docker_host_problem)
        if mode is not Mode.CONTAINER:
            return None
        # A bad own URL is reported already; fall back so it causes no second problem.
        url = own if own and host_key not in self.failed else default_host
        if urlsplit(url).scheme in ("tcp", "ssh"):
            url = url.rstrip("/")
        return ContainerPlacement(DockerHost(url), alias)


