"""HTTPS in front of a web service the stack runs (Lenses HQ, Metabase): an nginx container on
the service's Docker engine that terminates TLS with a certificate the program generates and
proxies to the service over the engine's own network; the service publishes nothing.

Why a proxy rather than each product's own TLS: Metabase's Jetty takes only a Java keystore,
which pulumi-tls cannot make, and keeps its plain HTTP port open beside HTTPS (metabase.com
docs, customizing-jetty-webserver; ring's jetty adapter adds the HTTP connector unless told
not to, and Metabase never tells it); HQ's `http.tls` takes PEM (lenses-helm-charts
_helper.tpl), but whether its `is-up` healthcheck speaks HTTPS is not documented. One proxy
shape for both keeps one certificate path (PEM files) and one TLS policy (1.2 and 1.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.docker_host import (
    ContainerDefaults,
    ContainerSpec,
    DockerEngine,
    Healthcheck,
    Port,
    run_container,
)
from components.render.proxy import ProxyLayout, render_proxy_conf
from components.settings import ContainerPlacement, HttpsFront
from components.tls import generate_server_tls

__all__ = ["CONF_PATH", "PROXY_PORT", "HttpsEndpoint", "run_https_front", "web_url"]

PROXY_PORT = 8443
CONF_PATH = "/etc/nginx/conf.d/default.conf"
"""Replaces the image's default server (plain HTTP on 80): the proxy serves HTTPS only."""


def web_url(placement: ContainerPlacement, port: int, host_port: int, https: bool) -> str:
    """Where the machine running Pulumi (in no Docker engine) reaches a web service on
    `placement`: its engine's address at `host_port`, which the service publishes, or its
    HTTPS front in its stead."""
    return f"{'https' if https else 'http'}://{placement.reached_from(None, port, host_port)}"


@dataclass(frozen=True)
class HttpsEndpoint:
    url: str
    """https://<Docker host>:<port>, from the machine running Pulumi."""
    ca_pem: pulumi.Output[str]
    """What clients trust."""
    container: docker.Container
    """The proxy; healthy once it listens."""


def run_https_front(
    component: pulumi.ComponentResource,
    name: str,
    engine: DockerEngine,
    defaults: ContainerDefaults,
    front: HttpsFront,
    *,
    role: str,
    service: ContainerPlacement,
    service_port: int,
    host_port: int,
    depends_on: Sequence[pulumi.Resource],
) -> HttpsEndpoint:
    """The proxy container `<role>-https` on the service's engine, publishing `host_port` with
    TLS, forwarding to the service's `service_port` as a container on that engine reaches it
    (its alias, over the engine's network)."""
    docker_host = service.docker_host
    if front.brought:
        certificate, key, ca = front.brought.as_outputs()
    else:
        tls = generate_server_tls(
            f"{name}-{role}-https", component, f"health-pipeline {role}",
            [*front.server_names, docker_host.address, "localhost", "127.0.0.1"])
        certificate, key, ca = tls.certificate_pem, tls.private_key_pem, tls.ca_pem
    upstream = service.reached_from(docker_host, service_port, host_port)
    layout = ProxyLayout(upstream=str(upstream), port=PROXY_PORT)
    proxy = run_container(
        component,
        name,
        engine,
        defaults,
        ContainerSpec(
            role=f"{role}-https",
            image=front.image,
            alias=f"{role}-https",
            ports=[Port(PROXY_PORT, host_port)],
            uploads=[
                docker.ContainerUploadArgs(file=CONF_PATH, content=render_proxy_conf(layout),
                                           permissions="0644"),
                docker.ContainerUploadArgs(file=layout.certificate_file, content=certificate,
                                           permissions="0644"),
                docker.ContainerUploadArgs(file=layout.key_file, content=key,
                                           permissions="0600"),
            ],
            # The listening socket, with bash's /dev/tcp (the image is Debian-based and has
            # no curl); the answer itself is the contract tests' to check.
            healthcheck=Healthcheck(
                command=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PROXY_PORT}"]),
            depends_on=depends_on,
        ),
    )
    return HttpsEndpoint(web_url(service, service_port, host_port, https=True), ca,
                         proxy.container)
