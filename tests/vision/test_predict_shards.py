"""Inference that scales out like training: predict under --nproc (torch.distributed.run, two processes on
the CPU) and the shards of --shard I/N give exactly the single-process output, in the same order."""

from __future__ import annotations

import json

import pytest

from tests.conftest import same_rows


def _ok(r):
    assert r.code == 0, r.stderr[-2000:]
    return r


def test_two_processes_give_the_single_process_output(cli, trained, digits, tmp_path):
    """--nproc 2 relaunches under torch.distributed.run: each rank predicts its block, rank 0 writes all."""
    for extra in ((), ("--embed",)):
        args = ("vision", "classify", "predict", trained, digits[1], *extra)
        whole = _ok(cli(*args, "--format", "jsonl")).stdout.splitlines()
        assert len(whole) == 60 and len({json.loads(line)["path"] for line in whole}) == 60
        out = tmp_path / "out.jsonl"
        _ok(cli(*args, "--nproc", "2", "-o", out, "--format", "jsonl"))
        assert same_rows(out.read_text().splitlines(), whole)


@pytest.mark.parametrize("embed", [False, True])
def test_shards_concatenated_are_the_whole(cli, trained, digits, embed):
    args = ("vision", "classify", "predict", trained, digits[1], "--format", "jsonl") + (("--embed",) if embed else ())
    whole = _ok(cli(*args)).stdout.splitlines()
    parts = [_ok(cli(*args, "--shard", f"{i}/3")).stdout.splitlines() for i in range(3)]
    assert [len(p) for p in parts] == [20, 20, 20]
    assert same_rows([line for p in parts for line in p], whole)


@pytest.mark.parametrize("value", ["3/3", "1", "a/b", "-1/2"])
def test_bad_shard_is_refused(cli, trained, digits, value):
    r = cli("vision", "classify", "predict", trained, digits[1], "--shard", value)
    assert r.code == 1 and r.stderr.startswith("error: --shard") and len(r.stderr.strip().splitlines()) == 1, r.stderr
