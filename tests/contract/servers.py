"""Real servers for the contract tests, started from Debian's binaries on free loopback
ports, with their logs kept for failure reports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.render.mosquitto import MosquittoLayout, render_conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str, *extra_dirs: str) -> str:
    """The path of a server binary, or a skip that says how to get it."""
    found = shutil.which(name, path=":".join([*extra_dirs, "/usr/sbin", "/usr/bin"]))
    if not found:
        pytest.skip(f"{name} is not installed; scripts/test installs it from Debian's packages")
    return found


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Mosquitto:
    """Mosquitto with the program's password file and ACL and a conf from the program's
    renderer, laid out under `root` instead of /mosquitto."""

    root: Path
    password_file: str
    acl: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def layout(self) -> MosquittoLayout:
        return MosquittoLayout(
            config_dir=str(self.root / "config"),
            data_dir=str(self.root / "data"),
            log_dir=str(self.root / "log"),
            port=self.port,
            websocket_port=None,
            bind_address="127.0.0.1",
        )

    @property
    def log(self) -> str:
        parts = [self.root / "stderr.log", Path(self.layout.log_dir) / "mosquitto.log"]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())

    def start(self) -> Mosquitto:
        executable = binary("mosquitto")
        layout = self.layout
        for folder in (layout.config_dir, layout.data_dir, layout.log_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)
        Path(layout.conf_file).write_text(render_conf(layout))
        Path(layout.password_file).write_text(self.password_file)
        Path(layout.acl_file).write_text(self.acl)
        for secret in (layout.password_file, layout.acl_file):
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
            wait_for_port(self.port)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; mosquitto said: {self.log[-2000:]}") from None
        return self

    def stop(self) -> None:
        """SIGTERM, as `docker stop` sends: Mosquitto writes its persistence file on the way."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
