"""What `docker inspect` shows of a container holds no credential: its command, entrypoint,
healthcheck and every environment entry that is not itself a secret are scanned, in both stacks,
for every secret value the program generated or was given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.harness import USER_SECRETS, ProgramRun, is_secret, unwrap

CONTAINER = "docker:index/container:Container"
GENERATED = {
    "random:index/randomPassword:RandomPassword": ("result", "bcryptHash"),
    "tls:index/privateKey:PrivateKey": ("privateKeyPem", "privateKeyPemPkcs8"),
    "pulumi-python:dynamic/lenses:Environment": ("agent_key",),
}


def secret_values(run: ProgramRun) -> set[str]:
    """Every generated secret, every configured one, and every secret stack output."""
    found = {str(v) for v in USER_SECRETS[run.stack].values()}
    for resource in run.resources:
        for key in GENERATED.get(resource.type, ()):
            if resource.computed.get(key):
                found.add(str(resource.computed[key]))
    for value, secret in run.outputs.values():
        if secret and isinstance(value, str):
            found.add(value)
    return {v for v in found if len(v) >= 8}


def inspectable(container: Any) -> dict[str, Any]:
    """The fields `docker inspect` shows in the clear: command, entrypoint, healthcheck and
    the environment entries that are not secrets of their own."""
    envs = container.inputs.get("envs") or []
    envs = unwrap(envs) if is_secret(envs) else envs
    return {
        "command": unwrap(container.inputs.get("command")),
        "entrypoints": unwrap(container.inputs.get("entrypoints")),
        "healthcheck": unwrap(container.inputs.get("healthcheck")),
        "envs": [e for e in envs if not is_secret(e)],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_container_shows_a_secret_to_docker_inspect(runs, stack) -> None:
    run = runs[stack]
    secrets = secret_values(run)
    assert len(secrets) >= 10, "the scan must have secrets to look for"
    containers = run.of_type(CONTAINER)
    assert containers
    for container in containers:
        shown = json.dumps(inspectable(container))
        leaked = [s[:6] + "..." for s in secrets if s in shown]
        assert not leaked, f"{container.get('name')} shows {leaked}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_scan_looks_for_every_mqtt_login(runs, stack) -> None:
    """The broker's users, the monitor's included: their passwords are secret outputs and
    generated ones, so the scan above looks for each."""
    run = runs[stack]
    scanned = secret_values(run)
    for who in ("Device", "Connector", "Monitor"):
        password, secret = run.outputs[f"mqtt{who}Password"]
        assert secret and password in scanned, who


def test_the_scan_finds_a_password_put_in_a_healthcheck(runs) -> None:
    """The scan itself: a container whose healthcheck held the MQTT healthcheck password (as
    this program's did before) is caught."""
    run = runs["dev"]
    mosquitto = run.container("mosquitto")
    password = next(r.computed["result"] for r in run.resources
                    if r.name == "mqtt-health-password")
    assert password in secret_values(run)
    leaky = {**mosquitto.inputs, "healthcheck": {"tests": ["CMD-SHELL", f"x -P {password}"]}}
    shown = json.dumps(inspectable(type(mosquitto)(**{**mosquitto.__dict__, "inputs": leaky})))
    assert password in shown
