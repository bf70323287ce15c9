"""Everything settings read from files a user brings or the build puts in place, each with an
error that says what to do: the Snowflake connector's RSA key pair (PEM bodies as Snowflake and
the connector want them), a CA bundle clients verify a server against, a Java truststore, and
the connector jars fast-data-dev loads (with their hashes). Renderers never read files; they
get what these return."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.settings.model import PROJECT_ROOT, ConnectorJar

MIN_RSA_BITS = 2048


class KeyFileError(ValueError):
    """A key file that cannot serve as the connector's key; the message says why and how."""


def pem_body(pem: str) -> str:
    """The base64 body of a PEM on one line, without BEGIN/END lines: the format of
    Snowflake's RSA_PUBLIC_KEY and of the connector's snowflake.private.key."""
    return "".join(
        line.strip() for line in pem.strip().splitlines() if not line.startswith("-----")
    )


def pem_from_body(body: str, label: str = "PRIVATE KEY") -> str:
    """The PEM of a one-line body (the inverse of pem_body): 64-character lines between the
    BEGIN and END lines, as clients that want a key file's text (Metabase) read it."""
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


@dataclass(frozen=True)
class KeyMaterial:
    public_key_body: str
    """SubjectPublicKeyInfo, one line."""
    private_key_body: str
    """Unencrypted PKCS#8, one line. Secret: wrap it in an Output.secret at once."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path} cannot be read: {error.strerror}") from None


def load_private_key(path: Path, passphrase: str | None) -> KeyMaterial:
    data = _read(path)
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN RSA PRIVATE KEY-----" in text:
        raise KeyFileError(
            f"{path} is a PKCS#1 key; convert it to PKCS#8 with: "
            f"openssl pkcs8 -topk8 -in {path.name} -out {path.stem}.p8"
        )
    encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text
    if not encrypted and "-----BEGIN PRIVATE KEY-----" not in text:
        raise KeyFileError(
            f"{path} is not a PKCS#8 PEM private key (expected a 'BEGIN PRIVATE KEY' or "
            "'BEGIN ENCRYPTED PRIVATE KEY' block; see keys/README.md)"
        )
    if encrypted and not passphrase:
        raise KeyFileError(f"{path} is encrypted and no passphrase is set for it")
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if encrypted and passphrase else None
        )
    except (ValueError, TypeError):
        reason = "the passphrase does not decrypt it" if encrypted else "it is malformed"
        raise KeyFileError(f"{path} cannot be loaded: {reason}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path} is not an RSA key; Snowflake key-pair auth needs RSA")
    if key.key_size < MIN_RSA_BITS:
        raise KeyFileError(f"{path} has {key.key_size} bits; use at least {MIN_RSA_BITS}")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyMaterial(pem_body(public.decode()), pem_body(private.decode()))


def load_ca_bundle(path: Path) -> str:
    """The certificates of a CA bundle file, as PEM text: what a TLS client verifies a server
    against. Only certificates; a private key in the file is refused (it would be copied into
    every container)."""
    data = _read(path)
    text = data.decode("ascii", errors="replace")
    if "PRIVATE KEY-----" in text:
        raise KeyFileError(f"{path} holds a private key; a CA bundle holds certificates only")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise KeyFileError(
            f"{path} is not a PEM certificate bundle (expected one or more "
            "'BEGIN CERTIFICATE' blocks)"
        ) from None
    return "".join(
        c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates
    )


JKS_MAGIC = b"\xfe\xed\xfe\xed"


def load_truststore(path: Path) -> bytes:
    """A Java truststore file's bytes: JKS (what the Lenses provisioning schema names), or
    PKCS#12, which the agent's JVM (Java 9 and later) also reads from a .jks file."""
    if path.suffix != ".jks":
        raise KeyFileError(f"{path} must be named *.jks (the agent's provisioning wants a "
                           "JKS truststore file)")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path} cannot be read: {error.strerror}") from None
    if not (data.startswith(JKS_MAGIC) or data[:1] == b"\x30"):
        raise KeyFileError(f"{path} is not a Java truststore (JKS or PKCS#12); make one with: "
                           f"keytool -importcert -file ca.pem -keystore {path.name}")
    return data


def project_path(text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else PROJECT_ROOT / path


def locate_snowflake_jar(path: Path) -> ConnectorJar:
    """The jar and its hash; a clear error if absent."""
    if not path.is_file():
        raise FileNotFoundError(
            f"Snowflake connector jar not found at {path}. Fetch it (the version is pinned in "
            "scripts/maven/pom.xml) with: scripts/fetch-connectors"
        )
    return ConnectorJar(path, _sha256(path))


def locate_mqtt_source_plugin(directory: Path) -> tuple[ConnectorJar, ...]:
    """The jars of this project's MQTT source plugin, each with its hash; a clear error if it
    has not been built."""
    jars = sorted(directory.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"kafkaMqttSource is health-pipeline, but {directory} holds no jars. Build the "
            "connector (sources in connectors/mqtt-source) with: scripts/build-mqtt-source"
        )
    return tuple(ConnectorJar(jar, _sha256(jar)) for jar in jars)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as jar:
        for block in iter(lambda: jar.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
