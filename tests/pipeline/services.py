"""Real services for the pipeline tests and the scale-out benchmark: PostgreSQL and Redis.

Both come from Debian packages (`apt-get install -y postgresql redis-server`); the tests skip
with a clear reason when the binaries are absent. PostgreSQL refuses to run as root, so as root
the cluster is created and started as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_USER = "forecasting"
PG_PASSWORD = "test-only"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def postgres_bin() -> Path | None:
    """Folder with initdb/pg_ctl/postgres (Debian keeps them under /usr/lib/postgresql/N/bin)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0].parent if versions else None


@dataclass(frozen=True)
class Postgres:
    """A running server: connection settings for Dagster and MLflow."""

    host: str
    port: int
    user: str
    password: str

    def dsn(self, db: str) -> str:
        """libpq URL of database ``db`` (for psycopg2.connect)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db}"

    def url(self, db: str) -> str:
        """SQLAlchemy/MLflow URL of database ``db`` (psycopg2 driver, see dagster.postgres.yaml)."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{db}"

    def env(self, db: str = "dagster") -> dict[str, str]:
        """The variables dagster.postgres.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": db,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
        }


@contextlib.contextmanager
def postgres_server(databases: tuple[str, ...] = ("dagster", "mlflow")) -> Iterator[Postgres]:
    """initdb into a temp folder, start on a free port, create ``databases``; stop and delete."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL binaries not found (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="pgtest_"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD)
    if as_root:
        shutil.chown(pwfile, "postgres")
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile),
         "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"],
        **run,
    )  # fmt: skip
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
         "-w", "-t", "60", "start"],
        **run,
    )  # fmt: skip
    try:
        server = Postgres("127.0.0.1", port, PG_USER, PG_PASSWORD)
        import psycopg2

        conn = psycopg2.connect(server.dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in databases:
                cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()
        yield server
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """redis-server on a free port (no persistence); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found (apt-get install -y redis-server)")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="redistest_")) / "redis.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--logfile", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_port(port, 20, proc)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(log.parent, ignore_errors=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` first, then every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out
