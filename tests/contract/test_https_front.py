"""A real nginx with the server block the program renders for HQ's HTTPS front and the
certificate chain it makes (computed under the mocks as pulumi-tls computes it), in front of
the HQ test server: the program's HQ client logs in and creates an environment through it,
trusting the front's CA; a client trusting another CA and a plain-HTTP client get nothing
from HQ."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.http_api import ApiError
from components.https_front import CONF_PATH, PROXY_PORT
from components.lenses_resources import EnvironmentProvider
from components.render.proxy import HEALTH_PATH, ProxyLayout, render_proxy_conf
from devtools.certs import TestCa
from devtools.harness import ProgramRun, unwrap
from devtools.servers import binary, free_port, negotiated_tls, wait_for_port
from tests.fake_lenses import FakeLenses

FAST = {"timeout": 5.0, "retries_on_conflict": 1, "backoff": 0.01}


@dataclass
class Nginx:
    root: Path
    conf: str
    port: int
    process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        for folder in ("temp", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / folder).chmod(0o777)
        (self.root / "default.conf").write_text(self.conf)
        main = self.root / "nginx.conf"
        main.write_text("\n".join([
            f"pid {self.root}/nginx.pid;",
            f"error_log {self.root}/logs/error.log;",
            "worker_processes 1;",
            "events {}",
            "http {",
            f"    access_log {self.root}/logs/access.log;",
            *(f"    {kind}_temp_path {self.root}/temp/{kind};"
              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
            f"    include {self.root}/default.conf;",
            "}",
        ]) + "\n")
        self.process = subprocess.Popen([binary("nginx"), "-c", str(main), "-g", "daemon off;"],
                                        stderr=subprocess.PIPE, text=True)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.process.kill()
            _, errors = self.process.communicate(timeout=10)
            raise RuntimeError(f"nginx did not start: {errors}") from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def hq() -> Iterator[FakeLenses]:
    fake = FakeLenses(environments=())
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def front(prod: ProgramRun, hq: FakeLenses) -> Iterator[tuple[Nginx, str]]:
    """nginx with prod's rendered HQ front (its paths and upstream mapped to this machine's),
    and the front's CA as prod exports it."""
    def upload(path: str) -> str:
        return unwrap(prod.upload("lenses-hq-https", path)["content"])

    root = Path(tempfile.mkdtemp(prefix="health-pipeline-nginx-"))
    root.chmod(0o755)
    port = free_port()
    layout = ProxyLayout(upstream=hq.url.removeprefix("http://"), port=port,
                         certs_dir=str(root / "tls"), bind_address="127.0.0.1")
    rendered = upload(CONF_PATH)
    local = render_proxy_conf(layout)
    # The same renderer: only the listen address, upstream and certificate paths differ.
    assert rendered == render_proxy_conf(ProxyLayout(upstream="lenses-hq:9991",
                                                     port=PROXY_PORT))
    Path(layout.certs_dir).mkdir()
    Path(layout.certificate_file).write_text(upload(layout_in_container().certificate_file))
    Path(layout.key_file).write_text(upload(layout_in_container().key_file))
    Path(layout.key_file).chmod(0o600)
    server = Nginx(root, local, port).start()
    yield server, prod.outputs["lensesCaCertificate"][0]
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def layout_in_container() -> ProxyLayout:
    return ProxyLayout(upstream="lenses-hq:9991", port=PROXY_PORT)


def _props(hq: FakeLenses, url: str, ca: str, name: str) -> dict:
    return {"hq_url": url, "hq_ca_pem": ca, "username": hq.username,
            "password": hq.password, "name": name, "tier": "production"}


def test_the_hq_client_works_through_the_front_trusting_its_ca(front, hq) -> None:
    server, ca = front
    created = EnvironmentProvider(**FAST).create(
        _props(hq, f"https://localhost:{server.port}", ca, "through-the-front"))
    assert created.outs["agent_key"].startswith("agent_key_")
    assert "through-the-front" in hq.environments
    assert hq.requests[-1].headers.get("X-Forwarded-Proto") == "https"


def test_a_client_trusting_another_ca_reaches_nothing(front, hq) -> None:
    server, _ = front
    before = len(hq.requests)
    with pytest.raises(ApiError, match="could not verify the server's certificate"):
        EnvironmentProvider(**FAST).create(
            _props(hq, f"https://localhost:{server.port}", TestCa.create("other").pem,
                   "never-made"))
    assert len(hq.requests) == before, "nothing reached HQ"


def test_plain_http_on_the_front_port_gets_an_error_and_never_reaches_hq(front, hq) -> None:
    server, _ = front
    before = len(hq.requests)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/api/v1/environments")
    reply = connection.getresponse()
    assert reply.status == 400 and b"sent to HTTPS port" in reply.read()
    assert len(hq.requests) == before


def test_the_front_answers_its_health_path_and_negotiates_tls_1_2_or_later(front) -> None:
    server, ca = front
    context = ssl.create_default_context(cadata=ca)
    connection = http.client.HTTPSConnection("localhost", server.port, timeout=5,
                                             context=context)
    connection.request("GET", HEALTH_PATH)
    reply = connection.getresponse()
    assert reply.status == 204
    assert connection.sock.version() in ("TLSv1.2", "TLSv1.3")
    connection.close()
    assert negotiated_tls(server.port, "tls1_2") == "TLSv1.2"
    assert negotiated_tls(server.port, "tls1_1") is None, "TLS 1.1 must be refused"


def test_the_containers_healthcheck_passes_against_the_listening_front(prod, front) -> None:
    server, _ = front
    check = prod.container("lenses-hq-https").get("healthcheck")["tests"]
    command = [part.replace(str(PROXY_PORT), str(server.port)) for part in check[1:]]
    assert command[:2] == ["bash", "-c"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    server.stop()
    time.sleep(0.2)
    assert subprocess.run(command, capture_output=True, timeout=10, check=False).returncode != 0
