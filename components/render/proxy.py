"""The TLS-terminating proxy in front of a web service (Lenses HQ, Metabase): an nginx server
block, rendered deterministically. nginx reads PEM files (ngx_http_ssl_module:
ssl_certificate, ssl_certificate_key) and proxies plain HTTP to the service on the Docker
network, whose own port is then not published. Sources: nginx.org docs, ngx_http_ssl_module
and ngx_http_proxy_module; the websocket upgrade as nginx.org's "WebSocket proxying" shows it."""

from __future__ import annotations

from dataclasses import dataclass

from components.render.tls_files import ServerCertificateFiles

__all__ = ["HEALTH_PATH", "ProxyLayout", "render_proxy_conf"]

HEALTH_PATH = "/.proxy-health"
"""Answered by nginx itself (204), for the container's healthcheck."""


@dataclass(frozen=True)
class ProxyLayout(ServerCertificateFiles):
    """Where the proxy listens, what it forwards to and where its certificate is; the
    container and the local test proxies differ."""

    upstream: str
    """host:port of the service, as the proxy reaches it."""
    port: int = 8443
    certs_dir: str = "/etc/nginx/tls"
    bind_address: str | None = None


def render_proxy_conf(layout: ProxyLayout) -> str:
    """A conf.d file: HTTPS only (TLS 1.2 and 1.3), everything proxied to the upstream with
    the headers a service behind a proxy needs to build its own URLs."""
    listen = f"{layout.bind_address}:{layout.port}" if layout.bind_address else str(layout.port)
    return "\n".join([
        "# Rendered by health-pipeline; edit the program, not this file.",
        "map $http_upgrade $connection_upgrade {",
        "    default upgrade;",
        "    '' close;",
        "}",
        "",
        "server {",
        f"    listen {listen} ssl;",
        f"    ssl_certificate {layout.certificate_file};",
        f"    ssl_certificate_key {layout.key_file};",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    client_max_body_size 50m;",
        "",
        f"    location = {HEALTH_PATH} {{",
        "        access_log off;",
        "        return 204;",
        "    }",
        "",
        "    location / {",
        f"        proxy_pass http://{layout.upstream};",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-Proto https;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header Upgrade $http_upgrade;",
        "        proxy_set_header Connection $connection_upgrade;",
        "        proxy_read_timeout 300s;",
        "    }",
        "}",
    ]) + "\n"
