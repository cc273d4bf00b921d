"""Atomic writes: the file lands whole or not at all, and the rename is made durable."""

from __future__ import annotations

import os
import stat

import pytest

from dltool.core.io import atomic_open, atomic_path


def test_atomic_write_fsyncs_the_file_then_the_folder_after_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        mode = os.fstat(fd).st_mode
        synced.append(("dir" if stat.S_ISDIR(mode) else "file", target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_open(target) as f:
        f.write("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    # the data is synced before the rename, the folder after it (when the new name exists)
    assert synced == [("file", False), ("dir", True)]


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "model.pt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("old")
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_a_missing_model_file_suggests_close_names_and_the_run_folders_nearby(cli, tmp_path, monkeypatch):
    (tmp_path / "runs" / "digits").mkdir(parents=True)
    (tmp_path / "runs" / "digits" / "model.pt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    r = cli("vision", "classify", "predict", "runs/digts/model.pt", "x")
    assert r.code == 1 and "did you mean 'runs/digits/model.pt'?" in r.stderr, r.stderr
    r = cli("vision", "classify", "predict", "model.pt", "x")
    assert r.code == 1 and "model files here: runs/digits/model.pt" in r.stderr, r.stderr
    r = cli("cluster", "kmeans", "runs/digits/model.pf")
    assert r.code == 1 and "did you mean 'runs/digits/model.pt'?" in r.stderr, r.stderr
