"""A throwaway PostgreSQL server for tests and benchmarks: a fresh cluster in a temporary folder.

    with throwaway_server() as dsn:             # about 3 seconds to start
        repository = PostgresRepository(dsn, registry)

The cluster listens on a unix socket only (no TCP port), trusts local connections, and runs
without durability (`fsync=off`): nothing in it is meant to be kept. The server refuses to run
as root, so as root (a CI machine) it is run as the `postgres` user through `runuser`. The
binaries are looked for in `TASKFLOW_PG_BIN`, then on PATH, then in Debian's
`/usr/lib/postgresql/<version>/bin`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskflow.errors import StorageError

__all__ = ["find_binaries", "start_server", "stop_server", "throwaway_server"]

_SERVER_USER = "postgres"


def find_binaries() -> Path:
    """Return the folder holding PostgreSQL's `initdb` and `pg_ctl`; raise `StorageError` if none."""
    chosen = os.environ.get("TASKFLOW_PG_BIN")
    candidates = [chosen] if chosen else []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    candidates += reversed(debian)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    msg = (
        "no PostgreSQL server binaries found (initdb and pg_ctl): looked in TASKFLOW_PG_BIN, "
        "on PATH and in /usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install "
        "postgresql) or name a running server"
    )
    raise StorageError(msg)


def _as_server_user(command: list[str]) -> list[str]:
    """Return `command` run as the `postgres` user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", _SERVER_USER, "--", *command]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        msg = (
            f"could not {what}: {' '.join(command)} exited with {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )
        raise StorageError(msg)


def start_server(folder: str | os.PathLike[str]) -> str:
    """Create a cluster in `folder` (if there is none) and start it; return its connection string.

    `folder` must exist; as root it is handed to the `postgres` user. The server keeps running
    until `stop_server(folder)`.
    """
    base = Path(folder).resolve()
    bin_dir = find_binaries()
    data = base / "data"
    if os.geteuid() == 0:
        try:
            shutil.chown(base, user=_SERVER_USER)
        except (LookupError, OSError) as exc:
            msg = (
                f"could not hand {base} to the '{_SERVER_USER}' user the server runs as: {exc}; "
                "as root, a 'postgres' user must exist (Debian's postgresql package makes it)"
            )
            raise StorageError(msg) from exc
        base.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "--no-sync",
                "-U",
                _SERVER_USER,
                "-E",
                "UTF8",
                "--locale=C",
            ],
            "create a PostgreSQL cluster",
        )
    options = (
        f"-k {base} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        "start the PostgreSQL server",
    )
    return f"host={base} port=5432 user={_SERVER_USER} dbname=postgres"


def stop_server(folder: str | os.PathLike[str]) -> None:
    """Stop the server `start_server(folder)` started (fast shutdown); a stopped one is left alone."""
    data = Path(folder).resolve() / "data"
    if not (data / "postmaster.pid").exists():
        return
    _run(
        [str(find_binaries() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
        "stop the PostgreSQL server",
    )


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a cluster in a new temporary folder, yield its connection string, then stop and remove it."""
    folder = tempfile.mkdtemp(prefix="taskflow-pg-")
    try:
        dsn = start_server(folder)
        try:
            yield dsn
        finally:
            stop_server(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
