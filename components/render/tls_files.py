"""Where the stack's TLS servers (Mosquitto, the HTTPS fronts) keep their certificate files."""

from __future__ import annotations

__all__ = ["ServerCertificateFiles"]


class ServerCertificateFiles:
    """Where a TLS server finds its certificate and key: `server.crt` and `server.key` in its
    `certs_dir`."""

    certs_dir: str

    @property
    def certificate_file(self) -> str:
        return f"{self.certs_dir}/server.crt"

    @property
    def key_file(self) -> str:
        return f"{self.certs_dir}/server.key"
