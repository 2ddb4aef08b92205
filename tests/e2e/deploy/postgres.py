"""A throwaway PostgreSQL server on loopback for the tests of the production instance.

Debian's `postgresql` binaries (initdb, pg_ctl) are used as they are; PostgreSQL refuses to run as root, so
under root the server runs as the `postgres` system user. `.ci/run` installs the binaries on a fresh machine,
as it does Chromium; elsewhere the tests that need a server are skipped with a message saying so.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresServer:
    directory: Path
    port: int
    user: str = "dagster"
    password: str = "dagster-test-only"
    database: str = "dagster"
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def _run(self, *command: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        bin_dir = binaries()
        data = self.directory / "data"
        secret = self.directory / "password"
        secret.write_text(self.password)
        # the server runs as `postgres`: it owns its directory and reads the password file
        if os.geteuid() == 0:
            record = pwd.getpwnam("postgres")
            for path in (self.directory, secret):
                os.chown(path, record.pw_uid, record.pw_gid)
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            f"--pwfile={secret}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
        )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "-t",
            "120",
            "start",
        )
        import psycopg2

        con = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            con.autocommit = True
            con.cursor().execute(f"CREATE DATABASE {self.database}")
        finally:
            con.close()
        return self

    def stop(self) -> None:
        self._run(str(binaries() / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")


def start_postgres(directory: Path) -> PostgresServer:
    return PostgresServer(directory, free_port()).start()
