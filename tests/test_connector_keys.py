"""The connector's key pairs: bringing one from keys/, and rotating without downtime."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from components.settings.files import KeyFileError, load_private_key, pem_body
from devtools.harness import (
    PROJECT,
    ROOT,
    USER_SECRETS,
    ProgramRun,
    State,
    run_program,
    unwrap,
)

USER = "snowflake:index/serviceUser:ServiceUser"
TLS_KEY = "tls:index/privateKey:PrivateKey"


def _write(path: Path, key, fmt, passphrase: bytes | None = None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))
    return path


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_body(key) -> str:
    return pem_body(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode())


def test_pem_body_is_one_line_without_header_and_footer() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nAAAA\nBBBB\n-----END PUBLIC KEY-----\n"
    assert pem_body(pem) == "AAAABBBB"


def test_brought_key_is_used_instead_of_a_generated_one(tmp_path, rsa_key) -> None:
    path = _write(tmp_path / "rsa_key.p8", rsa_key, serialization.PrivateFormat.PKCS8)
    run = run_program("dev", overrides={f"{PROJECT}:snowflakeKey1": str(path)})
    assert not [k for k in run.of_type(TLS_KEY) if k.name.startswith("snowflake-keys")]
    assert run.one(USER, "snowflake-user").get("rsaPublicKey") == _public_body(rsa_key)
    value, secret = run.outputs["snowflakePrivateKey"]
    assert secret
    loaded = serialization.load_der_private_key(base64.b64decode(value), password=None)
    assert loaded.private_numbers() == rsa_key.private_numbers()


def test_encrypted_key_with_its_passphrase_is_decrypted(tmp_path, rsa_key) -> None:
    path = _write(tmp_path / "enc.p8", rsa_key, serialization.PrivateFormat.PKCS8, b"s3cret")
    material = load_private_key(path, "s3cret")
    assert material.public_key_body == _public_body(rsa_key)


@pytest.mark.parametrize(
    ("make", "passphrase", "message"),
    [
        pytest.param(lambda d, k: d / "missing.p8", None, "cannot be read", id="missing"),
        pytest.param(lambda d, k: d, None, "cannot be read", id="a-directory"),
        pytest.param(
            lambda d, k: _write(d / "k.pem", k, serialization.PrivateFormat.TraditionalOpenSSL),
            None, "is a PKCS#1 key; convert it to PKCS#8 with: openssl pkcs8 -topk8",
            id="pkcs1"),
        pytest.param(lambda d, k: (d / "k.p8").write_text("not a key") and d / "k.p8", None,
                     "is not a PKCS#8 PEM private key", id="not-pem"),
        pytest.param(
            lambda d, k: _write(d / "k.p8", k, serialization.PrivateFormat.PKCS8, b"pw"),
            None, "is encrypted and no passphrase is set", id="encrypted-no-passphrase"),
        pytest.param(
            lambda d, k: _write(d / "k.p8", k, serialization.PrivateFormat.PKCS8, b"pw"),
            "other", "the passphrase does not decrypt it", id="wrong-passphrase"),
        pytest.param(
            lambda d, k: _write(d / "k.p8", ec.generate_private_key(ec.SECP256R1()),
                                serialization.PrivateFormat.PKCS8),
            None, "is not an RSA key", id="not-rsa"),
    ],
)
def test_unusable_key_file_is_a_clear_error(tmp_path, rsa_key, make, passphrase, message):
    path = make(tmp_path, rsa_key)
    with pytest.raises(KeyFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_private_key(path, passphrase)


def test_encrypted_key_without_passphrase_stops_the_program_with_the_command(
    tmp_path, rsa_key
) -> None:
    from components.settings import SettingsError

    path = _write(tmp_path / "k.p8", rsa_key, serialization.PrivateFormat.PKCS8, b"pw")
    with pytest.raises(SettingsError) as caught:
        run_program("dev", overrides={f"{PROJECT}:snowflakeKey2": str(path)})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{PROJECT}:snowflakeKey2 = '{path}': ")
    assert "pulumi config set --secret --stack dev snowflakeKey2Passphrase" in problem


def test_encrypted_key_with_secret_passphrase_loads_in_the_program(tmp_path, rsa_key) -> None:
    path = _write(tmp_path / "k.p8", rsa_key, serialization.PrivateFormat.PKCS8, b"pw")
    run = run_program(
        "prod",
        overrides={f"{PROJECT}:snowflakeKey1": str(path)},
        user_secrets={**USER_SECRETS["prod"], "snowflakeKey1Passphrase": "pw"},
    )
    assert run.one(USER, "snowflake-user").get("rsaPublicKey") == _public_body(rsa_key)


def test_active_slot_must_hold_a_key() -> None:
    from components.settings import SettingsError

    with pytest.raises(SettingsError) as caught:
        run_program("dev", overrides={f"{PROJECT}:snowflakeActiveKey": 2})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{PROJECT}:snowflakeActiveKey = '2': points at key slot 2")


def _snapshot(run: ProgramRun) -> dict[tuple[str, str], object]:
    return {(r.type, r.name): unwrap(r.inputs) for r in run.resources}


def _changes(before: ProgramRun, after: ProgramRun) -> dict[str, set]:
    a, b = _snapshot(before), _snapshot(after)
    return {
        "added": {name for _, name in b.keys() - a.keys()},
        "removed": {name for _, name in a.keys() - b.keys()},
        "changed": {key[1] for key in a.keys() & b.keys() if a[key] != b[key]},
        "outputs": {k for k in before.outputs if before.outputs[k] != after.outputs.get(k)},
    }


def test_rotation_changes_one_thing_per_step() -> None:
    state = State()

    def step(**keys) -> ProgramRun:
        overrides = {f"{PROJECT}:{k}": v for k, v in keys.items()}
        return run_program("dev", overrides=overrides, state=state)

    start = step()
    added = step(snowflakeKey2="generated")
    switched = step(snowflakeKey2="generated", snowflakeActiveKey=2)
    retired = step(snowflakeKey1="none", snowflakeKey2="generated", snowflakeActiveKey=2)

    # 1. A new key fills the free slot: the user gains RSA_PUBLIC_KEY_2, nothing else moves.
    assert _changes(start, added) == {
        "added": {"snowflake-keys-slot2"}, "removed": set(),
        "changed": {"snowflake-user"}, "outputs": set(),
    }
    user = added.one(USER, "snowflake-user")
    assert user.get("rsaPublicKey") == start.one(USER, "snowflake-user").get("rsaPublicKey")
    assert user.get("rsaPublicKey2") and user.get("rsaPublicKey2") != user.get("rsaPublicKey")
    # 2. The connector switches to it: only the sink's config and the key output change.
    assert _changes(added, switched) == {
        "added": set(), "removed": set(), "changed": {"connectors-snowflake-sink"},
        "outputs": {"snowflakePrivateKey"},
    }
    sink = switched.one("pulumi-python:dynamic/connect:Connector", "connectors-snowflake-sink")
    assert sink.get("config")["snowflake.private.key"] == switched.outputs["snowflakePrivateKey"][0]
    # 3. The old key leaves: slot 1 empties, the connector's key stays.
    assert _changes(switched, retired) == {
        "added": set(), "removed": {"snowflake-keys-slot1"},
        "changed": {"snowflake-user"}, "outputs": set(),
    }
    final = retired.one(USER, "snowflake-user")
    assert "rsaPublicKey" not in final.inputs
    assert final.get("rsaPublicKey2") == user.get("rsaPublicKey2")


def test_keys_readme_commands_make_a_key_the_program_accepts(tmp_path) -> None:
    """Run the openssl lines of keys/README.md as written, in a scratch folder."""
    readme = (ROOT / "keys" / "README.md").read_text()
    commands = [line[2:] for line in readme.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 4, "keys/README.md shows its commands as '$ ' lines"
    (tmp_path / "keys").mkdir()
    env = {**os.environ, "KEY_PASSPHRASE": "correct horse"}
    for command in commands:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
    plain = load_private_key(tmp_path / "keys" / "rsa_key.p8", None)
    encrypted = load_private_key(tmp_path / "keys" / "rsa_key_enc.p8", "correct horse")
    public = (tmp_path / "keys" / "rsa_key.pub").read_text()
    assert pem_body(public) == plain.public_key_body
    assert encrypted.public_key_body != plain.public_key_body
