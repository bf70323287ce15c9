"""MQTT over TLS as the program declares it: the generated CA and server certificate, or the
ones a user brings; Mosquitto's listeners; the healthcheck's login kept out of `docker inspect`."""

from __future__ import annotations

import pytest
from cryptography import x509

from components.tls import CA_VALIDITY_HOURS, SERVER_RENEWAL_HOURS, SERVER_VALIDITY_HOURS
from devtools.certs import TestCa
from devtools.harness import (
    PROJECT,
    USER_SECRETS,
    ProgramRun,
    brought_certificate,
    contains_secret,
    run_program,
    unwrap,
)

TLS = "tls:index/"


def _upload(run: ProgramRun, path: str) -> str:
    return unwrap(run.upload("mosquitto", path)["content"])


def _conf(run: ProgramRun) -> str:
    return _upload(run, "/mosquitto/config/mosquitto.conf")


def test_the_generated_certificate_names_every_way_the_broker_is_reached(run) -> None:
    request = run.one(f"{TLS}certRequest:CertRequest", "mqtt-tls-request")
    host = {"dev": "localhost", "prod": "mqtt.health.internal"}[run.stack]
    # The Docker host's name, the alias on the stack network, localhost; each once.
    assert request.get("dnsNames") == list(dict.fromkeys([host, "mosquitto", "localhost"]))
    assert request.get("ipAddresses") == ["127.0.0.1"]
    with_names = run_program(run.stack, {f"{PROJECT}:mqttTlsServerNames":
                                         ["mqtt.example.org", "10.0.0.5"]})
    request = with_names.one(f"{TLS}certRequest:CertRequest", "mqtt-tls-request")
    assert request.get("dnsNames")[0] == "mqtt.example.org"
    assert request.get("ipAddresses") == ["10.0.0.5", "127.0.0.1"]


def test_the_server_certificate_is_renewed_before_it_expires_and_the_ca_lasts(dev) -> None:
    ca = dev.one(f"{TLS}selfSignedCert:SelfSignedCert", "mqtt-tls-ca")
    assert ca.get("isCaCertificate") is True
    assert ca.get("validityPeriodHours") == CA_VALIDITY_HOURS == 87600
    assert set(ca.get("allowedUses")) == {"cert_signing", "crl_signing"}
    certificate = dev.one(f"{TLS}locallySignedCert:LocallySignedCert", "mqtt-tls-certificate")
    assert certificate.get("validityPeriodHours") == SERVER_VALIDITY_HOURS == 8760
    assert certificate.get("earlyRenewalHours") == SERVER_RENEWAL_HOURS == 720
    assert "server_auth" in certificate.get("allowedUses")
    for key in (dev.one(f"{TLS}privateKey:PrivateKey", n) for n in ("mqtt-tls-ca-key",
                                                                       "mqtt-tls-key")):
        assert (key.get("algorithm"), key.get("ecdsaCurve")) == ("ECDSA", "P256")


def test_the_broker_serves_the_chain_devices_trust(run) -> None:
    """The uploaded certificate is signed by the uploaded CA, which is the mqttCaCertificate
    output; the key is uploaded 0600 and secret."""
    ca_pem = _upload(run, "/mosquitto/certs/ca.crt")
    assert run.outputs["mqttCaCertificate"] == (ca_pem, False)
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    server = x509.load_pem_x509_certificate(_upload(run, "/mosquitto/certs/server.crt").encode())
    server.verify_directly_issued_by(ca)
    key = run.upload("mosquitto", "/mosquitto/certs/server.key")
    assert key["permissions"] == "0600"
    assert contains_secret(key["content"]) or contains_secret(
        run.container("mosquitto").inputs["uploads"])


def test_mosquitto_listens_with_tls_and_plain_only_where_the_stack_allows(run) -> None:
    conf = _conf(run)
    tls = ("certfile /mosquitto/certs/server.crt\nkeyfile /mosquitto/certs/server.key")
    assert f"listener 8883\nprotocol mqtt\n{tls}\ntls_version tlsv1.2\n" in conf
    assert f"listener 9443\nprotocol websockets\n{tls}\n" in conf
    plain = "listener 1883\nprotocol mqtt\n" in conf, "listener 9001\nprotocol websockets" in conf
    assert plain == {"dev": (True, True), "prod": (False, False)}[run.stack]


def test_outputs_give_devices_tls_urls(run) -> None:
    host = {"dev": "localhost", "prod": "mqtt.health.internal"}[run.stack]
    assert run.outputs["mqttUrl"][0] == f"ssl://{host}:8883"
    assert run.outputs["mqttWebsocketUrl"][0] == f"wss://{host}:9443"


def test_the_healthcheck_reads_its_login_from_a_file_not_its_command(run) -> None:
    check = run.container("mosquitto").get("healthcheck")["tests"]
    assert check[0] == "CMD-SHELL"
    command = check[1]
    assert command.startswith("XDG_CONFIG_HOME=/mosquitto/health mosquitto_sub ")
    assert "-p 8883 --cafile /mosquitto/certs/ca.crt" in command
    assert " -u " not in command and " -P " not in command
    login = run.upload("mosquitto", "/mosquitto/health/mosquitto_sub")
    assert login["permissions"] == "0600"
    lines = unwrap(login["content"]).splitlines()
    assert lines[0] == "-u healthcheck" and lines[1].startswith("-P ") and len(lines[1]) > 20


def test_a_brought_certificate_replaces_the_generated_one(tmp_path) -> None:
    brought = brought_certificate(tmp_path, "mqtt", "mqtt.hospital.example")
    certificate, key, ca_pem = brought.certificate, brought.key, brought.ca
    run = run_program("dev", brought.overrides, user_secrets=brought.secrets)
    assert not [r for r in run.resources if r.type.startswith(TLS)
                and r.name.startswith("mqtt-tls")], "no CA or server certificate generated"
    assert _upload(run, "/mosquitto/certs/server.crt") == certificate
    assert _upload(run, "/mosquitto/certs/server.key") == key
    assert run.outputs["mqttCaCertificate"] == (ca_pem, False)


@pytest.mark.parametrize(("overrides", "secrets", "expected"), [
    ({"mqttTlsCertificateFile": "keys/absent.pem", "mqttTlsCaFile": "keys/absent-ca.pem"},
     {"mqttTlsPrivateKey": "k"}, ["mqttTlsCertificateFile = 'keys/absent.pem': ",
                                  "mqttTlsCaFile = 'keys/absent-ca.pem': "]),
    ({"mqttTlsCaFile": "keys/ca.pem"}, {},
     ["mqttTlsCaFile = 'keys/ca.pem': is only used with mqttTlsCertificateFile"]),
    ({"mqttTlsServerNames": ["not a name"]}, {},
     ["mqttTlsServerNames = 'not a name': each entry must be a DNS name or an IP address"]),
])
def test_bad_tls_settings_are_named(overrides, secrets, expected) -> None:
    from tests.test_settings import problems
    found = problems("dev", overrides, {**USER_SECRETS["dev"], **secrets})
    assert len(found) == len(expected), found
    for want in expected:
        assert any(want in f for f in found), (want, found)


def test_a_brought_certificate_needs_its_key_and_ca(tmp_path) -> None:
    from tests.test_settings import problems
    ca = TestCa.create()
    (tmp_path / "server.pem").write_text(ca.server("x.example")[0])
    found = problems("dev", {"mqttTlsCertificateFile": str(tmp_path / "server.pem")})
    assert any("mqttTlsPrivateKey is not set" in f and "--secret" in f for f in found), found
    assert any("needs mqttTlsCaFile" in f for f in found), found
