"""Certificates for the stack's own TLS servers, generated with pulumi-tls and kept (encrypted)
in the state: a CA per server, and a server certificate it signs for the names clients reach
the server by. The server certificate is re-issued by the `pulumi up` after it enters its
renewal window; the CA, which clients trust, lasts ten years."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

__all__ = ["CA_VALIDITY_HOURS", "SERVER_RENEWAL_HOURS", "SERVER_VALIDITY_HOURS", "ClientTls",
           "ServerTls", "generate_client_tls", "generate_server_tls", "split_names"]

CA_VALIDITY_HOURS = 10 * 365 * 24
SERVER_VALIDITY_HOURS = 365 * 24
SERVER_RENEWAL_HOURS = 30 * 24
"""A month before it expires, the next `pulumi up` issues a new server certificate."""


@dataclass(frozen=True)
class ServerTls:
    certificate_pem: pulumi.Output[str]
    """The server's certificate (and any intermediates)."""
    private_key_pem: pulumi.Output[str]
    """Secret."""
    ca_pem: pulumi.Output[str]
    """What clients trust."""


def split_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses), each once, in the order given."""
    dns: list[str] = []
    ips: list[str] = []
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            target = dns
        else:
            target = ips
        if name not in target:
            target.append(name)
    return dns, ips


def generate_server_tls(
    name: str, parent: pulumi.Resource, common_name: str, names: Sequence[str]
) -> ServerTls:
    """A CA and a server certificate for `names` (DNS names or IP addresses), ECDSA P-256,
    children of `parent`."""
    child = pulumi.ResourceOptions(parent=parent)
    ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
    ca = tls.SelfSignedCert(
        f"{name}-ca",
        private_key_pem=ca_key.private_key_pem,
        subject=tls.SelfSignedCertSubjectArgs(common_name=f"{common_name} CA",
                                              organization="health-pipeline"),
        is_ca_certificate=True,
        validity_period_hours=CA_VALIDITY_HOURS,
        allowed_uses=["cert_signing", "crl_signing"],
        opts=child,
    )
    key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
    dns_names, ip_addresses = split_names(names)
    request = tls.CertRequest(
        f"{name}-request",
        private_key_pem=key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name=common_name,
                                           organization="health-pipeline"),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        opts=child,
    )
    certificate = tls.LocallySignedCert(
        f"{name}-certificate",
        cert_request_pem=request.cert_request_pem,
        ca_private_key_pem=ca_key.private_key_pem,
        ca_cert_pem=ca.cert_pem,
        validity_period_hours=SERVER_VALIDITY_HOURS,
        early_renewal_hours=SERVER_RENEWAL_HOURS,
        allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
        opts=child,
    )
    return ServerTls(certificate.cert_pem, pulumi.Output.secret(key.private_key_pem), ca.cert_pem)


@dataclass(frozen=True)
class ClientTls:
    certificate_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    """Secret; PKCS#1 RSA ("BEGIN RSA PRIVATE KEY"), which every PEM reader takes."""


def generate_client_tls(name: str, parent: pulumi.Resource, common_name: str) -> ClientTls:
    """A self-signed client certificate (RSA 2048), for a client that insists on presenting
    one although the server never asks for it (Stream Reactor's MQTT source)."""
    child = pulumi.ResourceOptions(parent=parent)
    key = tls.PrivateKey(f"{name}-key", algorithm="RSA", rsa_bits=2048, opts=child)
    certificate = tls.SelfSignedCert(
        f"{name}-certificate",
        private_key_pem=key.private_key_pem,
        subject=tls.SelfSignedCertSubjectArgs(common_name=common_name,
                                              organization="health-pipeline"),
        validity_period_hours=SERVER_VALIDITY_HOURS,
        early_renewal_hours=SERVER_RENEWAL_HOURS,
        allowed_uses=["digital_signature", "key_encipherment", "client_auth"],
        opts=child,
    )
    return ClientTls(certificate.cert_pem, pulumi.Output.secret(key.private_key_pem))
