"""HQ and Metabase behind their HTTPS fronts (prod): the services publish nothing, an nginx
proxy publishes their ports with TLS, and everything that talks to HQ trusts the front's CA."""

from __future__ import annotations

import pytest
import yaml
from cryptography import x509

from components.settings import SettingsError
from devtools.harness import PROJECT, ProgramRun, brought_certificate, run_program, unwrap

FRONTS = {"lenses-hq": ("lenses-hq:9991", 9991), "metabase": ("metabase:3000", 3000)}


def _conf(run: ProgramRun, role: str) -> str:
    return unwrap(run.upload(f"{role}-https", "/etc/nginx/conf.d/default.conf")["content"])


def test_prod_services_publish_nothing_and_their_fronts_publish_tls(prod) -> None:
    for role, (upstream, port) in FRONTS.items():
        assert not prod.container(role).get("ports"), role
        front = prod.container(f"{role}-https")
        assert [(p["internal"], p["external"]) for p in front.get("ports")] == [(8443, port)]
        image = prod.one("docker:index/remoteImage:RemoteImage",
                         f"{role.split('-')[0]}-{role}-https-image")
        assert image.get("name") == "nginx:1.30.4"
        conf = _conf(prod, role)
        assert "listen 8443 ssl;" in conf
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
        assert f"proxy_pass http://{upstream};" in conf
        assert "listen 80" not in conf, "the image's plain default server is replaced"
        assert prod.upload(f"{role}-https", "/etc/nginx/tls/server.key")["permissions"] == "0600"


def test_the_front_certificates_name_the_docker_hosts_and_chain_to_the_exported_cas(
    prod,
) -> None:
    for role, host, output in (("lenses-hq", "lenses.health.internal", "lensesCaCertificate"),
                               ("metabase", "analytics.health.internal",
                                "metabaseCaCertificate")):
        ca_pem, secret = prod.outputs[output]
        assert not secret
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        server = x509.load_pem_x509_certificate(
            unwrap(prod.upload(f"{role}-https", "/etc/nginx/tls/server.crt")["content"]).encode())
        server.verify_directly_issued_by(ca)
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert host in names.get_values_for_type(x509.DNSName), role


def test_prod_urls_are_https_and_hq_clients_trust_the_front(prod) -> None:
    assert prod.outputs["lensesUrl"][0] == "https://lenses.health.internal:9991"
    assert prod.outputs["metabaseUrl"][0] == "https://analytics.health.internal:3000"
    ca = prod.outputs["lensesCaCertificate"][0]
    for typ in ("Environment", "TopicFormat", "Processor"):
        for resource in prod.of_type(f"pulumi-python:dynamic/lenses:{typ}"):
            assert resource.get("hq_url") == "https://lenses.health.internal:9991"
            assert resource.get("hq_ca_pem") == ca, resource.name
    env = dict(e.split("=", 1) for e in prod.container("metabase").get("envs"))
    assert env["MB_SITE_URL"] == "https://analytics.health.internal:3000"


def test_hq_sends_its_session_cookie_only_over_https_behind_the_front(prod) -> None:
    config = yaml.safe_load(unwrap(prod.upload("lenses-hq", "/app/config.yaml")["content"]))
    assert config["http"] == {"address": ":9991", "secureSessionCookies": True}


def test_dev_has_no_front_unless_asked(dev) -> None:
    assert not [c for c in dev.of_type("docker:index/container:Container")
                if c.get("name").endswith("-https")]
    assert dev.outputs["lensesUrl"][0] == "http://localhost:9991"
    fronted = run_program("dev", {f"{PROJECT}:lensesHttps": True,
                                  f"{PROJECT}:lensesTlsServerNames": ["hq.example.org"]})
    assert fronted.outputs["lensesUrl"][0] == "https://localhost:9991"
    request = fronted.one("tls:index/certRequest:CertRequest", "lenses-lenses-hq-https-request")
    assert request.get("dnsNames") == ["hq.example.org", "localhost"]
    assert request.get("ipAddresses") == ["127.0.0.1"]


def test_a_brought_certificate_serves_the_front_instead(tmp_path) -> None:
    brought = brought_certificate(tmp_path, "lenses", "hq.hospital.example", "prod")
    run = run_program("prod", brought.overrides, user_secrets=brought.secrets)
    assert not [r for r in run.resources if r.name.startswith("lenses-lenses-hq-https-")
                and r.type.startswith("tls:")]
    assert unwrap(run.upload("lenses-hq-https", "/etc/nginx/tls/server.crt")["content"]) == (
        brought.certificate)
    assert unwrap(run.upload("lenses-hq-https", "/etc/nginx/tls/server.key")["content"]) == (
        brought.key)
    assert run.outputs["lensesCaCertificate"] == (brought.ca, False)


def test_a_brought_front_certificate_without_the_front_is_refused(tmp_path) -> None:
    brought = brought_certificate(tmp_path, "lenses", "hq.example")
    with pytest.raises(SettingsError) as caught:
        run_program("dev", brought.overrides, user_secrets=brought.secrets)
    (found,) = caught.value.problems
    assert "lensesTlsCertificateFile" in found and "is only used with lensesHttps true" in found
