"""Throwaway X.509 material for tests: a CA, and server certificates it signs for given host
names and addresses, as PEM text (the shapes a managed service's CA bundle and a server's
certificate have)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCa", "mock_cert_request", "mock_locally_signed_cert", "mock_self_signed_cert"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@dataclass(frozen=True)
class TestCa:
    """A self-signed CA valid for a day."""

    __test__ = False  # not a pytest test class

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "health-pipeline test CA") -> TestCa:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def server(self, *names: str) -> tuple[str, str]:
        """(certificate PEM, private key PEM) for a server known by `names`: DNS names, or IP
        addresses (which go into the certificate as addresses)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)


# --- what pulumi-tls computes, for the mocks: real X.509 from the resources' inputs -----------

_KEY_USAGES = {"digital_signature", "content_commitment", "key_encipherment",
               "data_encipherment", "key_agreement", "cert_signing", "crl_signing"}
_EXTENDED_USAGES = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
                    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}


def _subject(subject: dict) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"])]
    if subject.get("organization"):
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    return x509.Name(attributes)


def _with_uses(builder: x509.CertificateBuilder, uses: list[str],
               is_ca: bool) -> x509.CertificateBuilder:
    flags = {use: use in uses for use in _KEY_USAGES}
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=flags["digital_signature"],
        content_commitment=flags["content_commitment"],
        key_encipherment=flags["key_encipherment"],
        data_encipherment=flags["data_encipherment"], key_agreement=flags["key_agreement"],
        key_cert_sign=flags["cert_signing"], crl_sign=flags["crl_signing"],
        encipher_only=False, decipher_only=False), critical=True)
    extended = [_EXTENDED_USAGES[u] for u in uses if u in _EXTENDED_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    return builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None),
                                 critical=True)


def _pem_of(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def mock_self_signed_cert(inputs: dict) -> dict:
    """tls.SelfSignedCert's certPem."""
    key = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), None)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_subject(inputs["subject"]))
               .issuer_name(_subject(inputs["subject"]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(hours=inputs["validityPeriodHours"])))
    builder = _with_uses(builder, inputs.get("allowedUses") or [],
                         bool(inputs.get("isCaCertificate")))
    return {"certPem": _pem_of(builder.sign(key, hashes.SHA256()))}


def mock_cert_request(inputs: dict) -> dict:
    """tls.CertRequest's certRequestPem."""
    key = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), None)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in inputs.get("dnsNames") or []]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses") or []]
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(_subject(inputs["subject"]))
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .sign(key, hashes.SHA256()))
    return {"certRequestPem": request.public_bytes(serialization.Encoding.PEM).decode()}


def mock_locally_signed_cert(inputs: dict) -> dict:
    """tls.LocallySignedCert's certPem: the request's subject and names, signed by the CA."""
    request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_key = serialization.load_pem_private_key(inputs["caPrivateKeyPem"].encode(), None)
    ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(request.subject)
               .issuer_name(ca.subject)
               .public_key(request.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(hours=inputs["validityPeriodHours"]))
               .add_extension(request.extensions.get_extension_for_class(
                   x509.SubjectAlternativeName).value, critical=False))
    builder = _with_uses(builder, inputs.get("allowedUses") or [],
                         bool(inputs.get("isCaCertificate")))
    return {"certPem": _pem_of(builder.sign(ca_key, hashes.SHA256()))}
