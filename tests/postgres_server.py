"""A throwaway PostgreSQL server that a test can stop and start again (the outbox and secrets tests).

Started from the server binaries ``apt-get install postgresql`` puts under /usr/lib/postgresql
(as the ``postgres`` user when the tests run as root), in a temporary folder, on a free port,
with a password (scram-sha-256), so that tests can check that the password is never stored or
shown. Tests that need it are skipped, with the reason, where the binaries or psycopg are absent.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server: ``url`` (with its password), ``stop()``, ``start()``, ``dump()``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="qagate-pg-"))
        self.password = "pw-" + secrets.token_hex(12)
        self.port = _free_port()
        (self.dir / "pw").write_text(self.password + "\n")
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir / "pw", "postgres")
            self.as_owner = ["su", "postgres", "-s", "/bin/sh", "-c"]
        self._owner(
            f"'{self.bin}/initdb' -D '{self.dir}/data' -U postgres -A scram-sha-256 "
            f"--pwfile='{self.dir}/pw' -E UTF8"
        )
        self.start()
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run(
            [f"{self.bin}/psql", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + ["-c", "CREATE DATABASE qagate"],
            check=True,
            capture_output=True,
            env=env,
            timeout=60,
        )
        self.url = f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/qagate"

    def _owner(self, command: str) -> None:
        args = [*self.as_owner, command] if self.as_owner else ["sh", "-c", command]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._owner(
            f"'{self.bin}/pg_ctl' -D '{self.dir}/data' -l '{self.dir}/log' -w -t 60 start "
            f"-o '-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1'"
        )

    def stop(self) -> None:
        self._owner(f"'{self.bin}/pg_ctl' -D '{self.dir}/data' -m fast -w stop")

    def dump(self) -> bytes:
        """Every byte ``pg_dump`` writes for the database (schema and data)."""
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run(
            [f"{self.bin}/pg_dump", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "qagate"],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )
        return done.stdout

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_server() -> Server:
    """A fresh server, or a skip saying why there is none."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'pytest-qagate[postgres]')")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    try:
        return Server(bin_dir)
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        pytest.skip(f"cannot start a throwaway PostgreSQL server: {exc}")
