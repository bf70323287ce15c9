"""Real servers for the contract tests, started from Debian's binaries on free loopback
ports, with their logs kept for failure reports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.render.mosquitto import MosquittoLayout, render_conf
from components.settings import MosquittoTuning
from devtools.harness import ROOT, unwrap


class Missing(RuntimeError):
    """A server's binary or jars are not on this machine; the message says what installs
    them. The tests' conftest reports it as a skip (a failure under CI=true)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str, *extra_dirs: str) -> str:
    """The path of a server binary; Missing, saying how to get it, when absent."""
    found = shutil.which(name, path=":".join([*extra_dirs, "/usr/sbin", "/usr/bin"]))
    if not found:
        raise Missing(f"{name} is not installed; scripts/test installs it from Debian's packages")
    return found


def simulate(broker: int | Mosquitto, username: str, password: str, *args: str) -> str:
    """What `python -m simulator` prints after publishing as `username` to a broker: a plain
    port on 127.0.0.1, or a Mosquitto test server over TLS trusting its CA (`args` are the
    simulator's other options); a failed run fails the calling test."""
    where = (["--url", f"tcp://127.0.0.1:{broker}"] if isinstance(broker, int)
             else ["--url", broker.tls_url, "--cafile", broker.ca_file])
    done = subprocess.run(
        [sys.executable, "-m", "simulator", *where,
         "--username", username, "--password", password, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
               interval: float = 0.05) -> bool:
    """Whether `predicate` holds within `timeout` seconds, asked every `interval` and once
    more at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def project_tuning() -> MosquittoTuning:
    """The Pulumi.yaml defaults of the mqtt tuning settings, for a broker started without a
    program run (bench/simulator.py)."""
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return MosquittoTuning(
        max_inflight_messages=config["mqttMaxInflightMessages"]["default"],
        max_queued_messages=config["mqttMaxQueuedMessages"]["default"],
        autosave_interval=config["mqttAutosaveInterval"]["default"],
        autosave_on_changes=config["mqttAutosaveOnChanges"]["default"])


def tuning_in(conf: str) -> MosquittoTuning:
    """The tuning a rendered mosquitto.conf carries, so a local broker runs with exactly the
    values the program gave its container."""
    values = dict(line.split(" ", 1) for line in conf.splitlines()
                  if line and not line.startswith("#") and " " in line)
    return MosquittoTuning(
        max_inflight_messages=int(values["max_inflight_messages"]),
        max_queued_messages=int(values["max_queued_messages"]),
        autosave_interval=int(values["autosave_interval"]),
        autosave_on_changes=values["autosave_on_changes"] == "true")


@dataclass
class Mosquitto:
    """Mosquitto with the program's password file and ACL and a conf from the program's
    renderer, laid out under `root` instead of /mosquitto."""

    root: Path
    password_file: str
    acl: str
    tls: tuple[str, str, str] | None = None
    """(certificate, key, CA) PEMs: TLS listeners for MQTT and websockets, as the program's
    broker has."""
    plaintext: bool = True
    tuning: MosquittoTuning = field(default_factory=project_tuning)
    """Queueing and persistence: the program's (rendered_for) or Pulumi.yaml's defaults."""
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    secure_websocket_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def layout(self) -> MosquittoLayout:
        return MosquittoLayout(
            config_dir=str(self.root / "config"),
            data_dir=str(self.root / "data"),
            log_dir=str(self.root / "log"),
            certs_dir=str(self.root / "certs"),
            port=self.port if self.plaintext else None,
            websocket_port=None,
            tls_port=self.tls_port if self.tls else None,
            secure_websocket_port=self.secure_websocket_port if self.tls else None,
            bind_address="127.0.0.1",
        )

    @property
    def tls_url(self) -> str:
        return f"ssl://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> str:
        return self.layout.ca_file

    @property
    def log(self) -> str:
        parts = [self.root / "stderr.log", Path(self.layout.log_dir) / "mosquitto.log"]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())

    @classmethod
    def rendered_for(cls, run, root: Path, plaintext: bool = True) -> Mosquitto:
        """A broker with the password file, ACL and certificate chain `run` (a ProgramRun)
        uploads into its Mosquitto container."""
        def upload(path: str) -> str:
            return unwrap(run.upload("mosquitto", f"/mosquitto/{path}")["content"])
        tls = (upload("certs/server.crt"), upload("certs/server.key"), upload("certs/ca.crt"))
        return cls(root, password_file=upload("config/passwd"), acl=upload("config/acl"),
                   tls=tls, plaintext=plaintext,
                   tuning=tuning_in(upload("config/mosquitto.conf")))

    def start(self) -> Mosquitto:
        executable = binary("mosquitto")
        layout = self.layout
        for folder in (layout.config_dir, layout.data_dir, layout.log_dir, layout.certs_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)
        Path(layout.conf_file).write_text(render_conf(layout, self.tuning))
        Path(layout.password_file).write_text(self.password_file)
        Path(layout.acl_file).write_text(self.acl)
        secrets = [layout.password_file, layout.acl_file]
        if self.tls:
            for path, content in zip((layout.certificate_file, layout.key_file, layout.ca_file),
                                     self.tls, strict=True):
                Path(path).write_text(content)
            secrets.append(layout.key_file)
        for secret in secrets:
            Path(secret).chmod(0o600)
        if os.geteuid() == 0:
            # Started as root, Mosquitto drops to its own user, as in the image, whose
            # entrypoint also hands /mosquitto to that user.
            for path in (self.root, *self.root.rglob("*")):
                shutil.chown(path, "mosquitto", "mosquitto")
        with (self.root / "stderr.log").open("ab") as errors:
            self.process = subprocess.Popen([executable, "-c", layout.conf_file],
                                            stdout=errors, stderr=errors)
        try:
            for port in (layout.port, layout.tls_port, layout.secure_websocket_port):
                if port is not None:
                    wait_for_port(port)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; mosquitto said: {self.log[-2000:]}") from None
        return self

    @classmethod
    @contextmanager
    def temporary(cls, run, purpose: str, plaintext: bool = True) -> Iterator[Mosquitto]:
        """A started broker with `run`'s files in a throwaway directory, removed afterwards."""
        root = Path(tempfile.mkdtemp(prefix=f"health-pipeline-{purpose}-mosquitto-"))
        server = cls.rendered_for(run, root, plaintext).start()
        try:
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    def stop(self) -> None:
        """SIGTERM, as `docker stop` sends: Mosquitto writes its persistence file on the way."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def save(self) -> None:
        """SIGUSR1: Mosquitto writes its persistence file now (mosquitto(8), Signals), as it
        does every autosave_interval; returns once the file is newer than before."""
        data = Path(self.layout.data_dir) / "mosquitto.db"
        before = data.stat().st_mtime_ns if data.exists() else 0
        assert self.process is not None and self.process.poll() is None, "not running"
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not data.exists() or data.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Mosquitto did not write {data}: {self.log[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer ends it: nothing is written on the way."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _postgres_bin(name: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return binary(name, *(str(v) for v in versions))


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root; run its tools as the postgres user when we are."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port, password authentication on
    TCP as a managed server or the postgres image has it."""

    root: Path
    admin_password: str
    port: int = field(default_factory=free_port)
    tls: tuple[str, str] | None = None
    """(certificate PEM, key PEM): serve TLS and refuse unencrypted TCP (hostssl only), as a
    managed server that enforces TLS does."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Postgres:
        initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
        self.root.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "pwfile"
        password_file.write_text(self.admin_password + "\n")
        if os.geteuid() == 0:
            for path in (self.root, password_file):
                shutil.chown(path, "postgres", "postgres")
        done = _as_postgres([initdb, "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256",
                             f"--pwfile={password_file}", "-E", "UTF8"])
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if self.tls:
            options += " " + self._serve_tls_only(*self.tls)
        done = _as_postgres([pg_ctl, "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                             "-w", "-o", options, "start"])
        if done.returncode:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}\n{self.log}")
        return self

    def _serve_tls_only(self, certificate: str, key: str) -> str:
        """Writes the server's certificate and key and a pg_hba.conf that takes TCP clients
        over TLS only; the server options that turn TLS on."""
        cert_file, key_file = self.data / "server.crt", self.data / "server.key"
        cert_file.write_text(certificate)
        key_file.write_text(key)
        key_file.chmod(0o600)
        (self.data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "hostnossl all all 127.0.0.1/32 reject\n")
        if os.geteuid() == 0:
            for path in (cert_file, key_file, self.data / "pg_hba.conf"):
                shutil.chown(path, "postgres", "postgres")
        return (f"-c ssl=on -c ssl_cert_file={cert_file} -c ssl_key_file={key_file} "
                "-c ssl_min_protocol_version=TLSv1.2")

    def stop(self) -> None:
        _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def psql(self, user: str, password: str, database: str, sql: str,
             variables: dict[str, str] | None = None,
             conninfo: str | None = None) -> subprocess.CompletedProcess:
        """`sql` through psql (libpq) as `user`; `conninfo` replaces the plain connection to
        127.0.0.1 (e.g. with TLS parameters)."""
        target = ["-d", conninfo] if conninfo else [
            "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", database]
        command = [_postgres_bin("psql"), *target, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-t",
                   "-A"]
        for name, value in (variables or {}).items():
            command += ["-v", f"{name}={value}"]
        return subprocess.run(command, input=sql, capture_output=True, text=True, check=False,
                              env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"})


def negotiated_tls(port: int, version: str) -> str | None:
    """The protocol `openssl s_client` negotiates with 127.0.0.1:`port` when it offers only
    `version` (tls1_1, tls1_2, tls1_3), at security level 0 so that this client could speak
    TLS 1.1 at all; None when the server refuses."""
    done = subprocess.run(
        [binary("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}",
         "-cipher", "DEFAULT@SECLEVEL=0"],
        input="", capture_output=True, text=True, timeout=20, check=False)
    # "New, TLSv1.3, Cipher is ..." comes with the handshake; the session block's Protocol line
    # may not (TLS 1.3 prints it only once a session ticket arrived).
    found = re.search(r"^New, (TLSv[\d.]+),", done.stdout, re.MULTILINE)
    return found[1] if done.returncode == 0 and found else None
