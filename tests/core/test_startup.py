"""A table command whose CPU path needs no torch does not import it (a second of start-up per stage of
a pipe): `cluster kmeans`, `reduce pca` and `cluster evaluate`, with --device cpu, and with --device auto
on a machine without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

from dltool.core.device import gpu_may_be_present

# each command runs in one fresh interpreter; after each, it prints whether torch is imported
PROBE = ("import sys\nfrom dltool.cli import main\n"
         "for args in {commands!r}:\n"
         "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
         "    print('torch' in sys.modules)")


def _torch_after_each(commands: list[list[str]]) -> list[bool]:
    env = {k: v for k, v in os.environ.items() if k != "DLTOOL_DEVICE"}
    r = subprocess.run([sys.executable, "-c", PROBE.format(commands=commands)], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    return [line == "True" for line in r.stdout.split() if line in ("True", "False")]


def test_cpu_table_commands_do_not_import_torch(tmp_path):
    from tests.cluster.conftest import blobs, write_csv

    X, y = blobs(n=60)
    table = str(write_csv(tmp_path / "t.csv", X, y))
    clusters, reduced = str(tmp_path / "clusters.csv"), str(tmp_path / "reduced.csv")
    # --device auto decides "CPU" from /dev without torch only where no GPU may be present
    devices = ["cpu"] if gpu_may_be_present() else ["cpu", "auto"]
    commands = []
    for device in devices:
        commands += [["cluster", "kmeans", table, "-k", "3", "-o", clusters, "--device", device],
                     ["reduce", "pca", table, "-n", "2", "-o", reduced, "--device", device],
                     ["cluster", "evaluate", clusters, "--truth", "label", "--format", "json", "--device", device,
                      "-q"]]
    # the probe is real: kmeans' torch engine does import torch
    commands.append(["cluster", "kmeans", table, "-k", "3", "--engine", "torch", "--device", "cpu", "-o", clusters])
    assert _torch_after_each(commands) == [False] * (len(commands) - 1) + [True]
