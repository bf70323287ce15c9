"""Runs the real `__main__.py` under Pulumi mocks for a stack, with the stack's config merged
the way the Pulumi CLI merges it, and records every registered resource."""

from __future__ import annotations

import atexit
import base64
import copy
import hashlib
import json
import os
import runpy
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import bcrypt
import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devtools.certs import (
    TestCa,
    mock_cert_request,
    mock_locally_signed_cert,
    mock_self_signed_cert,
)
from devtools.pulumi_sdk import SECRET, MockMonitor, isolated_run, run_sync
from devtools.pulumi_sdk import is_secret as is_secret
from devtools.pulumi_sdk import unwrap as unwrap
from devtools.stub_jars import write_stub_jars

ROOT = Path(__file__).resolve().parent.parent

PROJECT = "health-pipeline"

# Outputs the real engine marks secret through the providers' additional_secret_outputs;
# mocks do not, so the harness does. tests/test_project_files.py checks this table against the SDKs.
ENGINE_SECRET_OUTPUTS: dict[str, tuple[str, ...]] = {
    "random:index/randomPassword:RandomPassword": ("bcryptHash", "result"),
    "random:index/randomBytes:RandomBytes": ("base64", "hex"),
    "tls:index/privateKey:PrivateKey": ("privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"),
    # Declared by components/lenses_resources.py's Environment itself.
    "pulumi-python:dynamic/lenses:Environment": ("agent_key",),
}


_KEYS: dict[tuple[int, str], rsa.RSAPrivateKey] = {}
MOCK_KEYS = ROOT / "build" / "stubs" / "mock-keys"
"""Named mock RSA keys, generated once per checkout (build/ is ignored by git): a 4096-bit key
takes up to a second, and every process that runs the program (tests, scripts/plan, bench)
would otherwise make its own."""


def _rsa_key(bits: int, name: str = "") -> rsa.RSAPrivateKey:
    """A real RSA key; one per resource name, because 4096-bit keys take a while and
    independent runs need not differ (runs sharing a State share it anyway); a fresh one for
    no name."""
    if not name:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if (bits, name) not in _KEYS:
        path = MOCK_KEYS / f"{bits}-{name}.pem"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
        except (OSError, ValueError):
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            MOCK_KEYS.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f".{path.name}.{os.getpid()}")
            part.write_text(_pem(key, serialization.PrivateFormat.PKCS8))
            part.replace(path)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits, path
        _KEYS[(bits, name)] = key
    return _KEYS[(bits, name)]


def _pem(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt,
                             serialization.NoEncryption()).decode()


# The Snowflake admin's key, as a user would set it with `pulumi config set --secret`.
ADMIN_KEY_PEM = _pem(_rsa_key(2048, "snowflake-admin"), serialization.PrivateFormat.PKCS8)

# The CA of prod's managed Postgres, as a user brings it (postgresCaFile); a throwaway one here.
_FILES = Path(tempfile.mkdtemp(prefix="health-pipeline-harness-"))
atexit.register(shutil.rmtree, _FILES, ignore_errors=True)
POSTGRES_CA_FILE = _FILES / "postgres-ca.pem"
POSTGRES_CA_FILE.write_text(TestCa.create("managed Postgres test CA").pem)

# The connector jars the program uploads, as stand-ins: no Java, Maven or network needed.
STUB_JARS = write_stub_jars()

# Settings a user sets per stack (`pulumi config set`) that the stack file leaves out.
USER_CONFIG: dict[str, dict[str, Any]] = {
    "dev": {
        f"{PROJECT}:snowflakeOrganizationName": "DEVORG",
        f"{PROJECT}:snowflakeAccountName": "DEVACCOUNT",
        f"{PROJECT}:snowflakeAdminUser": "DEVELOPER",
        **STUB_JARS.config(PROJECT),
    },
    "prod": {f"{PROJECT}:postgresCaFile": str(POSTGRES_CA_FILE), **STUB_JARS.config(PROJECT)},
}

# Secrets a user sets per stack with `pulumi config set --secret`; test values only.
USER_SECRETS: dict[str, dict[str, str]] = {
    "dev": {"snowflakeAdminPrivateKey": ADMIN_KEY_PEM, "lensesLicenseKey": "license_key_test"},
    "prod": {
        "kafkaSaslPassword": "test-sasl-password",
        "postgresAdminPassword": "test-postgres-admin-password",
        "snowflakeAdminPrivateKey": ADMIN_KEY_PEM,
        "lensesLicenseKey": "license_key_test",
    },
}


# A stack in which every service that can be external is: exercises every external branch.
ALL_EXTERNAL: dict[str, Any] = {
    f"{PROJECT}:{key}": value
    for key, value in {
        "mqttMode": "external",
        "mqttEndpoint": "ssl://mqtt.example.org:8883",
        "kafkaMode": "external",
        "kafkaBrokerCount": 3,
        "kafkaBootstrapServers": ["k1.example.org:9096", "k2.example.org:9096"],
        "kafkaSaslUsername": "pipeline",
        "kafkaSchemaRegistryUrl": "https://sr.example.org",
        "kafkaConnectUrl": "https://connect.example.org",
        "postgresMode": "external",
        "postgresEndpoint": "postgresql://pg.example.org:5432",
        "postgresSslMode": "require",
        "postgresSuperuser": False,
        "lensesMode": "external",
        "lensesHqUrl": "https://lenses.example.org",
        "lensesHqAgentsAddress": "lenses.example.org:10000",
        "lensesAcceptEula": True,
        "metabaseMode": "external",
        "metabaseUrl": "https://metabase.example.org",
    }.items()
}
ALL_EXTERNAL_SECRETS = {
    "mqttDevicePassword": "test-device-password",
    "mqttConnectorPassword": "test-connector-password",
    "kafkaSaslPassword": "test-sasl-password",
    "postgresAdminPassword": "test-admin-password",
    "lensesAgentKey": "agent_key_test",
    "lensesLicenseKey": "license_key_test",
    "lensesAdminPassword": "test-hq-password",
    "snowflakeAdminPrivateKey": ADMIN_KEY_PEM,
}


class ConfigError(ValueError):
    """What the Pulumi CLI would refuse before running the program."""


@cache
def _parsed(path: Path, mtime_ns: int) -> Any:
    """A YAML file parsed once per version of it (the harness reads the project and stack
    files on every run; parsing them was a quarter of a run's time)."""
    return yaml.safe_load(path.read_text())


def _yaml(path: Path) -> Any:
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


def project_config() -> dict[str, dict[str, Any]]:
    return _yaml(ROOT / "Pulumi.yaml")["config"]


def stack_file(stack: str) -> dict[str, Any]:
    return _yaml(ROOT / f"Pulumi.{stack}.yaml").get("config") or {}


def _type_ok(kind: str, value: Any) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
    }[kind]


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def merge_config(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    user_secrets: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Stack values (the file plus what a user sets with `pulumi config set`) over Pulumi.yaml
    defaults, refusing wrong types as the CLI does and passing undeclared keys on as it does
    too (checked with the real CLI 3.274: it neither warns nor drops them; the program
    refuses them itself). Returns the config map and the keys that are secret."""
    declared = project_config()
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    given = {**stack_file(stack), **USER_CONFIG[stack], **(overrides or {})}
    for full_key, value in given.items():
        namespace, _, key = full_key.rpartition(":")
        if namespace != PROJECT:
            values[full_key] = value
            continue
        if key not in declared:
            values[full_key] = value
            continue
        if isinstance(value, dict) and "secure" in value:
            raise ConfigError(f"{full_key}: give test secrets through user_secrets")
        if not _type_ok(declared[key]["type"], value):
            raise ConfigError(
                f"Stack '{stack}' with configuration key '{key}' must be of type "
                f"'{declared[key]['type']}'"
            )
        values[full_key] = value
    for key, spec in declared.items():
        full_key = f"{PROJECT}:{key}"
        if full_key not in values:
            if "default" not in spec:
                raise ConfigError(f"Stack '{stack}' is missing configuration value '{key}'")
            values[full_key] = spec["default"]
    for key, value in (user_secrets or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    return {k: _as_config_string(v) for k, v in values.items()}, secret_keys


def contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


@dataclass
class Registered:
    """One resource as the engine would have received it."""

    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    provider: str = ""
    protect: bool = False
    additional_secret_outputs: list[str] = field(default_factory=list)
    computed: dict[str, Any] = field(default_factory=dict)
    """What the (mock) provider computed on create, e.g. a generated password or key."""

    def get(self, key: str) -> Any:
        return unwrap(self.inputs.get(key))

    def secret(self, key: str) -> bool:
        return is_secret(self.inputs.get(key))

    @property
    def provider_urn(self) -> str:
        return self.provider.rpartition("::")[0]


class State:
    """What the engine keeps between runs: generated values survive, as in a real stack."""

    def __init__(self) -> None:
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}


def _generated(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Values a provider computes on create, made the way the provider makes them."""
    if typ == "random:index/randomPassword:RandomPassword":
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        result = "".join(secrets.choice(alphabet) for _ in range(int(inputs["length"])))
        hashed = bcrypt.hashpw(result.encode(), bcrypt.gensalt(rounds=4)).decode()
        return {"result": result, "bcryptHash": hashed}
    if typ == "random:index/randomBytes:RandomBytes":
        raw = secrets.token_bytes(int(inputs["length"]))
        return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
    if typ == "tls:index/selfSignedCert:SelfSignedCert":
        return mock_self_signed_cert(unwrap(inputs))
    if typ == "tls:index/certRequest:CertRequest":
        return mock_cert_request(unwrap(inputs))
    if typ == "tls:index/locallySignedCert:LocallySignedCert":
        return mock_locally_signed_cert(unwrap(inputs))
    if typ == "tls:index/privateKey:PrivateKey" and inputs.get("algorithm") == "ECDSA":
        assert inputs.get("ecdsaCurve") == "P256", inputs
        ec_key = ec.generate_private_key(ec.SECP256R1())
        return {"privateKeyPem": _pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL),
                "privateKeyPemPkcs8": _pem(ec_key, serialization.PrivateFormat.PKCS8),
                "publicKeyPem": ec_key.public_key().public_bytes(
                    serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
    if typ == "tls:index/privateKey:PrivateKey":
        key = _rsa_key(int(inputs["rsaBits"]), name)
        public = key.public_key()
        return {
            "privateKeyPem": _pem(key, serialization.PrivateFormat.TraditionalOpenSSL),
            "privateKeyPemPkcs8": _pem(key, serialization.PrivateFormat.PKCS8),
            "privateKeyOpenssh": _pem(key, serialization.PrivateFormat.OpenSSH),
            "publicKeyPem": public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": public.public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            ).decode() + "\n",
        }
    if typ == "pulumi-python:dynamic/lenses:Processor":
        return {"processor_id": secrets.token_hex(8)}  # what HQ answers a create with
    if typ == "pulumi-python:dynamic/lenses:Environment":
        return {"agent_key": f"agent_key_{secrets.token_hex(16)}"}
    if typ == "pulumi-python:dynamic/metabase:Database":
        return {"database_id": 2}  # Metabase's sample database is 1
    if typ == "pulumi-python:dynamic/metabase:Dashboard":
        return {"card_ids": list(range(1, len(inputs.get("cards") or []) + 1))}
    if typ == "docker:index/remoteImage:RemoteImage":
        digest = hashlib.sha256(unwrap(inputs["name"]).encode()).hexdigest()
        return {"imageId": f"sha256:{digest}", "repoDigest": f"{inputs['name']}@sha256:{digest}"}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, state: State) -> None:
        self.state = state
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.inputs[(args.typ, args.name)] = args.inputs
        key = (args.typ, args.name)
        if key not in self.state.outputs:
            self.state.outputs[key] = _generated(args.typ, args.name, args.inputs)
        generated = {
            k: {**SECRET, "value": v}
            if k in ENGINE_SECRET_OUTPUTS.get(args.typ, ())
            else v
            for k, v in self.state.outputs[key].items()
        }
        return f"{args.name}-id", {**args.inputs, **generated}

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise AssertionError(f"the program made an unexpected invoke: {args.token}")


class RecordingMonitor(MockMonitor):
    """Keeps what MockResourceArgs leaves out: parent, dependencies, provider, protect."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=self.make_urn(request.parent, request.type, request.name),
                    custom=bool(request.custom),
                    inputs=self.mocks.inputs.get((request.type, request.name), {}),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    protect=bool(request.protect),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    computed=self.mocks.state.outputs.get((request.type, request.name), {}),
                )
            )
        return response


@dataclass
class ProgramRun:
    stack: str
    resources: list[Registered]
    outputs: dict[str, tuple[Any, bool]]
    """Stack output name -> (value, is_secret)."""

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> Registered:
        found = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(found) == 1, f"{self.stack}: expected one {typ} named {name}, got {found}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def container(self, role: str) -> Registered:
        return next(
            r
            for r in self.of_type("docker:index/container:Container")
            if r.get("name").endswith(f"-{role}")
        )

    def upload(self, role: str, path: str) -> dict[str, Any]:
        uploads = self.container(role).inputs["uploads"]
        uploads = unwrap(uploads) if is_secret(uploads) else uploads
        return next(u for u in uploads if unwrap(u["file"]) == path)


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    user_secrets: Mapping[str, str] | None = None,
    state: State | None = None,
    main: Callable[[], Mapping[str, pulumi.Output]] | None = None,
) -> ProgramRun:
    """Run `__main__.py` for `stack` and return what it registered and exported; `main`, a
    test's own program returning its stack outputs, runs in its stead with the same config
    (for wiring `__main__.py` does not do yet)."""
    config, secret_keys = merge_config(
        stack, overrides, USER_SECRETS[stack] if user_secrets is None else user_secrets
    )
    mocks = RecordingMocks(state or State())
    monitor = RecordingMonitor(mocks)

    def program() -> dict[str, tuple[Any, bool]]:
        if main is not None:
            outputs = main()
        else:
            namespace = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            outputs = namespace["stack_outputs"]

        async def resolve() -> dict[str, tuple[Any, bool]]:
            return {key: (await output.future(), await output.is_secret())
                    for key, output in outputs.items()}

        return run_sync(resolve())

    resolved = isolated_run(program, mocks, monitor, project=PROJECT, stack=stack,
                            config=config, secret_keys=secret_keys)
    return ProgramRun(stack, monitor.registered, resolved)


@dataclass(frozen=True)
class BroughtCertificate:
    """A server certificate a user brings for `service` (mqtt, lenses, metabase): its files
    and the settings that name them."""

    certificate: str
    key: str
    ca: str
    overrides: dict[str, Any]
    secrets: dict[str, str]


def brought_certificate(directory: Path, service: str, host: str,
                        stack: str = "dev") -> BroughtCertificate:
    ca = TestCa.create(f"hospital CA for {service}")
    certificate, key = ca.server(host)
    (directory / f"{service}.pem").write_text(certificate)
    (directory / f"{service}-ca.pem").write_text(ca.pem)
    return BroughtCertificate(
        certificate, key, ca.pem,
        {f"{PROJECT}:{service}TlsCertificateFile": str(directory / f"{service}.pem"),
         f"{PROJECT}:{service}TlsCaFile": str(directory / f"{service}-ca.pem")},
        {**USER_SECRETS[stack], f"{service}TlsPrivateKey": key},
    )
