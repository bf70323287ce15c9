"""A Snowflake service user's RSA key pairs in its two public-key slots (the Kafka connector's
INGEST user, the dashboards' REPORTING user): generated with pulumi-tls or brought from keys/,
and the private key of the active slot."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from components.settings import SnowflakeKeySlot
from components.settings.files import pem_body, pem_from_body

__all__ = ["RSA_BITS", "ConnectorKeys", "ConnectorKeysArgs"]

RSA_BITS = 4096


@dataclass(frozen=True)
class ConnectorKeysArgs:
    slots: tuple[SnowflakeKeySlot, SnowflakeKeySlot]
    """The service user's two key slots (snowflakeKey1/2): generated, brought or empty."""
    active: int
    """The slot (1 or 2) whose private key the client uses (snowflakeActiveKey)."""
    settings_prefix: str = "snowflake"
    """Where the slots come from, for errors: `<prefix>Key1/2`, `<prefix>ActiveKey`."""

    def __post_init__(self) -> None:
        for slot in self.slots:
            brought = slot.filled and not slot.generated
            if brought and (slot.public_key_body is None or slot.private_key_body is None):
                raise ValueError(
                    f"ConnectorKeysArgs.slots: key slot {slot.slot} ({slot.source}) was not "
                    f"loaded from the file {self.settings_prefix}Key{slot.slot} names")
        if not any(slot.slot == self.active and slot.filled for slot in self.slots):
            raise ValueError(
                f"ConnectorKeysArgs.active: active key slot {self.active} is empty; fill it "
                f"({self.settings_prefix}Key{self.active}) or set "
                f"{self.settings_prefix}ActiveKey to a filled slot")


class ConnectorKeys(pulumi.ComponentResource):
    """Rotation without downtime: fill the free slot, switch `active` to it, then empty the
    old slot. Each step changes only the user's key slots or only the connector's key."""

    public_keys: dict[int, pulumi.Output[str]]
    """Slot -> public key body (one line, no header), for filled slots only."""
    private_key: pulumi.Output[str]
    """Secret: the active slot's unencrypted PKCS#8 body, as snowflake.private.key takes it."""
    private_key_pem: pulumi.Output[str]
    """Secret: the same key as a PKCS#8 PEM, for clients that read a key file's text."""

    def __init__(
        self, name: str, args: ConnectorKeysArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:snowflake:ConnectorKeys", name, None, opts)
        self.public_keys = {}
        private_keys: dict[int, pulumi.Output[str]] = {}
        for slot in args.slots:
            if not slot.filled:
                continue
            if slot.generated:
                key = tls.PrivateKey(
                    f"{name}-slot{slot.slot}",
                    algorithm="RSA",
                    rsa_bits=RSA_BITS,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.public_keys[slot.slot] = key.public_key_pem.apply(pem_body)
                private_keys[slot.slot] = pulumi.Output.secret(
                    key.private_key_pem_pkcs8.apply(pem_body)
                )
            else:
                # Checked in ConnectorKeysArgs.__post_init__.
                assert slot.public_key_body is not None and slot.private_key_body is not None
                self.public_keys[slot.slot] = pulumi.Output.from_input(slot.public_key_body)
                private_keys[slot.slot] = pulumi.Output.secret(slot.private_key_body)
        self.private_key = private_keys[args.active]
        self.private_key_pem = pulumi.Output.secret(self.private_key.apply(pem_from_body))
        self.register_outputs(
            {f"publicKey{slot}": key for slot, key in self.public_keys.items()}
            | {"privateKey": self.private_key}
        )
