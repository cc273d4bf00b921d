"""Two workers on one study in a real PostgreSQL server, started for the test (initdb + pg_ctl in a
temporary folder, on a loopback port) and stopped at the end. `make services` installs Debian's
postgresql package where its binaries are missing; without them this test is skipped, saying why.

PostgreSQL refuses to run as root: as root the server runs as the unprivileged user `nobody`."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.tune.conftest import kmeans_chain, one_json, trials_run, write_spec


def _pg_bin() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("pg_ctl")).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: run `make services` to install them")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")
    folder = Path(tempfile.mkdtemp(prefix="dltool-pg-"))
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = folder / "data", _free_port()

    def pg_run(*args):
        r = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120, cwd=folder)
        assert r.returncode == 0, r.stdout + r.stderr
    pg_run(str(pg / "initdb"), "-D", str(data), "-U", "tune", "--auth=trust", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    pg_run(str(pg / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://tune@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_study_in_postgresql(cli, tmp_path, blob_table, postgres_url):
    spec = write_spec(tmp_path / "pg.toml", command=kmeans_chain(blob_table, "--n-clusters", "3"), metric="silhouette",
                      trials=4, sampler="tpe", space={"tol": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}})
    r = cli("tune", "run", spec, "--out", tmp_path / "st", "--storage", postgres_url, "--workers", "2", "--quiet")
    assert r.code == 0, r.stderr
    summary = one_json(r.stdout)
    assert summary["storage"] == postgres_url and summary["complete"] == 4
    trials = trials_run(tmp_path / "st")  # read back from the database
    assert len({t.params["tol"] for t in trials}) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    # a second machine would join the same way: by name and URL, without the first one's folder
    shown = cli("tune", "show", "pg", "--storage", postgres_url, "--format", "json", "--no-plots")
    assert shown.code == 0, shown.stderr
    assert one_json(shown.stdout)["complete"] == 4
