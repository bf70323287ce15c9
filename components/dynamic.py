"""What the dynamic providers (Kafka Connect connectors; Lenses HQ's environments, topic
formats and SQL processors; Metabase's setup, databases and dashboards) share: how a provider
is built, pickled, diffed and reaches its API, and how a resource turns its Args into inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import DiffResult, ResourceProvider

from components.http_api import JsonApi

__all__ = ["ArgsResource", "RestProvider", "engine_keyed_diff"]


def engine_keyed_diff(changed: bool, replaces: Sequence[str]) -> DiffResult:
    """The provider decides whether anything changed and what forces a replacement; the engine
    names what changed. A Python dynamic provider cannot report changed keys (its DiffResult
    has no diffs or detailed diff), so a change is answered as "unknown": the engine then
    compares the old and new inputs key by key, nested keys included, and shows that in
    `pulumi preview --diff` and as the step's diffReasons (pkg/resource/deploy
    step_generator.go, diffResource). Replacements delete first: both a connector and a
    processor are unique by name."""
    return DiffResult(changes=None if changed else False, replaces=list(replaces),
                      delete_before_replace=True)


class RestProvider(ResourceProvider):
    """A provider over a REST API. Pulumi pickles the provider into the state, so it holds no
    credentials and no client: only plain numbers for its calls. Every operation builds a
    client from the resource's own (secret) inputs, masking their secret values in every
    error. The class is pickled by reference, so the provider process imports its module from
    the project directory.

    A subclass names its INPUTS and the ones that force a replacement (REPLACED_BY); any other
    input that changes (credentials, or what the API can update in place) is an update."""

    INPUTS: ClassVar[tuple[str, ...]] = ()
    """What a resource keeps, compares and reads back; not the engine's own `__provider`."""
    REPLACED_BY: ClassVar[tuple[str, ...]] = ()
    """Inputs whose change means a new object in the remote system."""

    # Also class attributes: a provider pickled before it held them still finds them.
    timeout: float = 30.0
    """Seconds per request."""
    retries_on_conflict: int = 6
    """Writes answered 409 (a Connect rebalance, an HQ conflict) are retried this often."""
    backoff: float = 0.5
    """First retry delay in seconds; it doubles."""

    def __init__(
        self, timeout: float = 30.0, retries_on_conflict: int = 6, backoff: float = 0.5
    ) -> None:
        super().__init__()
        self.timeout = timeout
        self.retries_on_conflict = retries_on_conflict
        self.backoff = backoff

    def _api(self, base_url: str, secrets: Sequence[str] = (), ca_pem: str = "",
             timeout: float | None = None) -> JsonApi:
        """An HTTP client for one operation, with this provider's timeout and retries."""
        return JsonApi(base_url.rstrip("/"), timeout=timeout or self.timeout,
                       retries_on_conflict=self.retries_on_conflict, backoff=self.backoff,
                       secrets=tuple(secrets), ca_pem=ca_pem)

    def _inputs(self, props: dict[str, Any]) -> dict[str, Any]:
        """The declared properties without the engine's own (`__provider`)."""
        return {key: props.get(key) for key in self.INPUTS}

    def _comparable(self, value: Any) -> Any:
        """An input as diff compares it; a subclass may ignore what its API does not keep."""
        return value

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in self.INPUTS
                   if self._comparable(olds.get(key)) != self._comparable(news.get(key))]
        return engine_keyed_diff(bool(changed), [k for k in changed if k in self.REPLACED_BY])


class ArgsResource(pulumi.dynamic.Resource):
    """A dynamic resource whose inputs are its Args' fields. Secret inputs are secret in the
    inputs recorded in the state too (not only in the outputs), and the outputs a provider
    computes start out unknown. A subclass names itself with `module=` and `name=`, as
    pulumi.dynamic.Resource does."""

    def __init__(
        self,
        provider: RestProvider,
        resource_name: str,
        args: Any,
        opts: pulumi.ResourceOptions | None = None,
        secret_inputs: tuple[str, ...] = (),
        computed: tuple[str, ...] = (),
        secret_outputs: tuple[str, ...] = (),
    ) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props |= {key: pulumi.Output.secret(props[key]) for key in secret_inputs}
        props |= dict.fromkeys(computed)
        super().__init__(
            provider,
            resource_name,
            props,
            pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    additional_secret_outputs=[*secret_inputs, *secret_outputs]),
            ),
        )
