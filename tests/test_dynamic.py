"""Both dynamic providers (Kafka Connect's connectors; Lenses HQ's environments, topic formats
and processors) are built one way: a RestProvider that keeps exactly its resource's Args as
inputs and replaces only on inputs it keeps, under an ArgsResource."""

from __future__ import annotations

from dataclasses import fields

import pytest

from components.connectors import Connector, ConnectorArgs, ConnectorProvider
from components.dynamic import ArgsResource, RestProvider
from components.lenses_resources import (
    Environment,
    EnvironmentArgs,
    EnvironmentProvider,
    TopicFormat,
    TopicFormatArgs,
    TopicFormatProvider,
)
from components.processors import Processor, ProcessorArgs, ProcessorProvider

KINDS = [
    (Connector, ConnectorArgs, ConnectorProvider),
    (Environment, EnvironmentArgs, EnvironmentProvider),
    (TopicFormat, TopicFormatArgs, TopicFormatProvider),
    (Processor, ProcessorArgs, ProcessorProvider),
]


@pytest.mark.parametrize(("resource", "args", "provider"), KINDS,
                         ids=[kind[0].__name__ for kind in KINDS])
def test_each_provider_keeps_and_compares_exactly_its_args(resource, args, provider) -> None:
    """An Args field missing from INPUTS would be sent but never compared, so a change to it
    would show no diff."""
    assert issubclass(resource, ArgsResource) and issubclass(provider, RestProvider)
    assert set(provider.INPUTS) == {f.name for f in fields(args)}
    assert len(provider.INPUTS) == len(set(provider.INPUTS))
    assert set(provider.REPLACED_BY) <= set(provider.INPUTS), "replaced on an input it drops"


@pytest.mark.parametrize("provider", [kind[2] for kind in KINDS],
                         ids=[kind[2].__name__ for kind in KINDS])
def test_each_provider_is_built_with_the_same_call_settings(provider) -> None:
    made = provider(timeout=7.0, retries_on_conflict=2, backoff=0.01)
    assert (made.timeout, made.retries_on_conflict, made.backoff) == (7.0, 2, 0.01)
    default = provider()
    assert (default.timeout, default.retries_on_conflict, default.backoff) == (30.0, 6, 0.5)
