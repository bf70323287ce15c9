"""One Docker engine of the stack: its explicit provider and the stack network, plus the
container recipe every service shares (pinned image, network alias, volumes, healthcheck)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.settings import ContainerPlacement, DockerHost, Settings

__all__ = [
    "ContainerDefaults",
    "ContainerSpec",
    "DockerEngine",
    "DockerEngineArgs",
    "DockerEngines",
    "Healthcheck",
    "Port",
    "ServiceContainer",
    "run_container",
]


@dataclass(frozen=True)
class DockerEngineArgs:
    host: DockerHost
    """The engine's URL (unix://, tcp:// or ssh://), from the stack's placements."""
    network_name: str
    """Docker network every container of the stack on this engine joins."""


class DockerEngine(pulumi.ComponentResource):
    """A Docker engine with its provider and the stack's network on it."""

    provider: docker.Provider
    """Explicit provider for every resource on this engine."""
    network_name: pulumi.Output[str]
    """Name of the stack network."""

    def __init__(
        self, name: str, args: DockerEngineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:docker:DockerEngine", name, None, opts)
        self.host = args.host
        self.provider = docker.Provider(
            f"{name}-provider", host=args.host.url, opts=pulumi.ResourceOptions(parent=self)
        )
        network = docker.Network(
            f"{name}-network",
            name=args.network_name,
            driver="bridge",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.network_name = network.name
        self.register_outputs({"networkName": self.network_name})


@dataclass(frozen=True)
class ContainerDefaults:
    """Stack-wide choices every container follows."""

    name_prefix: str
    publish_ip: str
    wait_timeout: int
    protect: bool

    @classmethod
    def of(cls, settings: Settings) -> ContainerDefaults:
        return cls(settings.name_prefix, settings.publish_ip, settings.wait_timeout,
                   settings.protect)


class DockerEngines:
    """One DockerEngine per Docker host the stack's containers run on, named after the host."""

    def __init__(self, hosts: Sequence[DockerHost], name_prefix: str) -> None:
        self._engines = {
            host: DockerEngine(f"docker-{host.slug}", DockerEngineArgs(host, name_prefix))
            for host in hosts
        }

    def on(self, placement: ContainerPlacement | None) -> DockerEngine | None:
        """The engine a service runs on; None for a service that runs no container."""
        return self._engines[placement.docker_host] if placement else None


@dataclass(frozen=True)
class Port:
    internal: int
    external: int
    ip: str | None = None
    """The host address it is published on; None: the stack's publishIp."""


@dataclass(frozen=True)
class Healthcheck:
    command: Sequence[pulumi.Input[str]]
    """A `CMD` / `CMD-SHELL` test, exactly as Docker takes it."""
    interval: str = "5s"
    timeout: str = "5s"
    retries: int = 12
    start_period: str = "10s"


@dataclass(frozen=True)
class ContainerSpec:
    role: str
    """Short name: container `<prefix>-<role>`, resources `<component>-<role>`."""
    image: str
    alias: str
    healthcheck: Healthcheck
    ports: Sequence[Port] = ()
    envs: Sequence[pulumi.Input[str]] = ()
    volumes: Mapping[str, str] = field(default_factory=dict)
    """Volume role -> mount path; each becomes a named volume."""
    uploads: Sequence[docker.ContainerUploadArgs] = ()
    command: Sequence[str] = ()
    """Arguments to the image's entrypoint; empty keeps the image's CMD."""
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class ServiceContainer:
    container: docker.Container
    volumes: Mapping[str, docker.Volume]


def run_container(
    component: pulumi.ComponentResource,
    component_name: str,
    engine: DockerEngine,
    defaults: ContainerDefaults,
    spec: ContainerSpec,
) -> ServiceContainer:
    """Pull the pinned image and start the container on the stack network; `wait=True` makes
    `pulumi up` hold dependents until the healthcheck passes."""
    on_engine = pulumi.ResourceOptions(parent=component, provider=engine.provider)
    image = docker.RemoteImage(
        f"{component_name}-{spec.role}-image",
        name=spec.image,
        keep_locally=True,
        opts=on_engine,
    )
    volumes = {
        role: docker.Volume(
            f"{component_name}-{role}",
            name=f"{defaults.name_prefix}-{role}",
            opts=pulumi.ResourceOptions.merge(
                on_engine, pulumi.ResourceOptions(protect=defaults.protect)
            ),
        )
        for role in spec.volumes
    }
    check = spec.healthcheck
    container = docker.Container(
        f"{component_name}-{spec.role}",
        name=f"{defaults.name_prefix}-{spec.role}",
        image=image.image_id,
        hostname=spec.alias,
        command=list(spec.command) or None,
        restart="unless-stopped",
        envs=list(spec.envs) or None,
        ports=[
            docker.ContainerPortArgs(
                internal=p.internal, external=p.external, ip=p.ip or defaults.publish_ip,
                protocol="tcp",
            )
            for p in spec.ports
        ],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=engine.network_name, aliases=[spec.alias])
        ],
        volumes=[
            docker.ContainerVolumeArgs(volume_name=volumes[role].name, container_path=path)
            for role, path in spec.volumes.items()
        ],
        uploads=list(spec.uploads) or None,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=list(check.command),
            interval=check.interval,
            timeout=check.timeout,
            retries=check.retries,
            start_period=check.start_period,
        ),
        wait=True,
        wait_timeout=defaults.wait_timeout,
        opts=pulumi.ResourceOptions.merge(
            on_engine,
            pulumi.ResourceOptions(
                depends_on=list(spec.depends_on),
                # Env entries and uploads built from generated values carry credentials:
                # their outputs stay secret in state and previews, whatever the provider
                # returns (the policy pack checks for this).
                additional_secret_outputs=[
                    key for key, generated in (
                        ("envs", any(isinstance(v, pulumi.Output) for v in spec.envs)),
                        ("uploads", any(isinstance(u.content, pulumi.Output)
                                        for u in spec.uploads)),
                    ) if generated
                ] or None,
            ),
        ),
    )
    return ServiceContainer(container, volumes)
