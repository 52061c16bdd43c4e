"""A real PostgreSQL for the store tests: CI's (TEST_DATABASE_URL), else a throwaway cluster started here, else skip."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.redis_server import free_port


@dataclass
class PostgresServer:
    """A cluster on loopback; `data_dir` is set when the tests started it (and so stop it)."""

    url: str
    data_dir: str | None = None
    pg_ctl: str | None = None
    run_as: tuple[str, ...] = ()

    def stop(self) -> None:
        if self.data_dir and self.pg_ctl:
            subprocess.run([*self.run_as, self.pg_ctl, "-D", self.data_dir, "-m", "immediate", "stop"], capture_output=True)
            shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)


def find_binary(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, or in Debian's /usr/lib/postgresql/<version>/bin."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl (which waits until the server accepts connections) in a temp dir, trust auth on 127.0.0.1."""
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql package)")
    run_as: tuple[str, ...] = ()
    root = tempfile.mkdtemp(prefix="connectors-pg-")
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as Debian's postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        run_as = ("runuser", "-u", "postgres", "--")
        shutil.chown(root, "postgres")
    data = os.path.join(root, "data")
    port = free_port()
    init = subprocess.run(
        [*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], capture_output=True, text=True
    )
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    started = subprocess.run(
        [*run_as, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {started.stdout.strip()[-300:]}")
    return PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", data, pg_ctl, run_as)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """CI's PostgreSQL when TEST_DATABASE_URL is set, else one started for the session."""
    url = os.environ.get("TEST_DATABASE_URL")
    server = PostgresServer(url) if url else start_postgres()
    yield server
    server.stop()
