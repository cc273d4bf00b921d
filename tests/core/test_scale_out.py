"""Distributed training as the engine provides it: synchronised ranks, sharded validation, different
random draws per rank, two nodes on loopback, and a Ctrl-C that every rank agrees on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.core.train_commands import VISION_CLASSIFY

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_stay_synchronised_and_validate_their_own_shards(tmp_path):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(HERE / "ddp_blobs.py"), str(tmp_path)], capture_output=True, text=True, env=_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    states = [torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in (0, 1)]
    facts = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1)]
    for key in states[0]:  # DDP: every parameter identical on both ranks after training
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(states[0][key], states[1][key]), key
    assert facts[0]["draw"] != facts[1]["draw"]  # dropout / augmentation draws differ across ranks
    assert facts[0]["train_items"] == facts[1]["train_items"] == 80  # 160 split evenly
    assert facts[0]["val_items"] + facts[1]["val_items"] == 43  # every validation item once (22 + 21)
    s0, s1 = facts[0]["summary"], facts[1]["summary"]
    assert s0["val_accuracy"] == s1["val_accuracy"]  # the metrics are combined, the same on every rank
    assert s0["val_n_seen"] == (22 * 22 + 21 * 21) / 43  # the item-weighted mean of the two shards
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)  # the best epoch: what fit leaves
    assert all(torch.equal(saved["state_dict"][k], states[0][k]) for k in states[0])
    # and the validation figure is that of the saved model on the whole validation set
    from sklearn.datasets import make_blobs

    X, y = make_blobs(203, n_features=4, centers=3, cluster_std=2.0, random_state=0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(16, 3))
    model.load_state_dict(saved["state_dict"])
    model.eval()
    with torch.no_grad():
        pred = model(torch.tensor(X[160:], dtype=torch.float32)).argmax(1).numpy()
    assert abs(saved["metrics"]["val_accuracy"] - float((pred == y[160:]).mean())) < 1e-12


def _classify_cmd(data, out, *extra):
    return [*VISION_CLASSIFY.command, str(data), "--out", str(out), *VISION_CLASSIFY.args, *extra]


def test_two_nodes_on_loopback_train_one_model(cli, tmp_path):
    data = VISION_CLASSIFY.make_data(tmp_path / "data")
    port = _free_port()
    run = tmp_path / "run"
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "dltool-test",
            "-m", "dltool", *_classify_cmd(data, run, "--format", "json")]
    procs = [subprocess.Popen(node, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    printed = [o[0] for o in outs if o[0].strip()]
    assert len(printed) == 1 and json.loads(printed[0])["run_dir"] == str(run)  # one rank of the two printed
    assert torch.load(run / "last.pt", weights_only=True)["train_state"]["world"] == 2
    VISION_CLASSIFY.learned(cli, data, run)


def test_ctrl_c_stops_every_rank_on_the_same_step_and_resumes_exactly(cli, tmp_path):
    """The terminal's Ctrl-C reaches the launcher and both workers; they agree on a step, save it, exit 130;
    --resume with the same --nproc ends identical to an uninterrupted two-process run."""
    from tests.core.test_train_commands import _same_run

    data = VISION_CLASSIFY.make_data(tmp_path / "data")
    full, part = tmp_path / "full", tmp_path / "part"
    longer = ("--epochs", "3", "--batch-size", "4", "--nproc", "2")  # 27 steps an epoch
    r = subprocess.run([sys.executable, "-m", "dltool", *_classify_cmd(data, full, *longer)], capture_output=True,
                       text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    cmd = [sys.executable, "-m", "dltool", *[a for a in _classify_cmd(data, part, *longer) if a != "--quiet"]]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env(),
                            start_new_session=True)
    for line in proc.stderr:
        if line.startswith("epoch 1/3"):
            time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest[-2000:]
    assert "interrupted in epoch" in rest and "--resume" in rest
    assert not (part / "model.pt").exists()
    r = subprocess.run([sys.executable, "-m", "dltool", *_classify_cmd(data, part, *longer, "--resume")],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _same_run(full, part)


def test_a_failing_worker_stops_the_others_and_its_code_and_error_are_the_launchs(tmp_path, monkeypatch, capfd):
    """--nproc's launcher: each worker gets its rank and a shared rendezvous; when one fails the others,
    which would wait for it forever, are stopped, and the launch exits with the failure's code and prints
    its error once: the failing rank's own, or rank 0's alone when every rank fails alike."""
    from dltool.core import distributed as dist

    def launch(script: str) -> int:
        worker = tmp_path / "python"
        worker.write_text(f'#!/bin/sh\necho "$RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $DLTOOL_NPROC_WORKER $*" >> '
                          f'{tmp_path}/seen\n{script}\n')
        worker.chmod(0o755)
        monkeypatch.setattr(sys, "executable", str(worker))
        return dist.relaunch(2, ["vision", "classify", "train", "d"])

    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", dist.LAUNCHED):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    assert launch('[ "$RANK" = 1 ] && { echo "error: rank 1 broke" >&2; exit 3; }\nexec sleep 60') == 3
    assert time.monotonic() - started < 8  # the sleeper was stopped, not waited for
    assert capfd.readouterr().err == "error: rank 1 broke\n"
    seen = sorted((tmp_path / "seen").read_text().splitlines())
    assert seen == ["0 0 2 127.0.0.1 1 -m dltool vision classify train d", "1 1 2 127.0.0.1 1 -m dltool vision classify train d"]
    assert launch('[ "$RANK" = 1 ] && sleep 0.3; echo "error: data \'d\' does not exist" >&2; exit 1') == 1
    assert capfd.readouterr().err == "error: data 'd' does not exist\n"
