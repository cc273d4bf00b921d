"""The one loading rule: info, mono mixdown, resampling, crop/pad, and corrupt files refused or skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.audio.conftest import BAD_KINDS, bad_file, tone, write


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_info_one_row_per_file(cli, clips, tmp_path):
    stereo = write(tmp_path / "hi.wav", tone(1000, sr=96000, seconds=0.5, channels=2), sr=96000)
    r = cli("audio", "info", clips, stereo, "--format", "jsonl")
    assert r.code == 0, r.stderr
    rows = _rows(r.stdout)
    assert [row["path"] for row in rows][:4] == [str(p) for p in sorted(clips.rglob("*.*"))]
    assert rows[0] == {"path": str(clips / "a" / "t0.wav"), "sample_rate": 16000, "channels": 1, "frames": 16000,
                       "duration_s": 1.0, "format": "WAV", "subtype": "PCM_16", "nyquist_hz": 8000.0}
    assert rows[2]["format"] == "FLAC"
    assert rows[-1]["sample_rate"] == 96000 and rows[-1]["channels"] == 2 and rows[-1]["frames"] == 48000
    assert rows[-1]["nyquist_hz"] == 48000.0


def test_info_reads_paths_from_stdin_and_writes_csv(cli, clips):
    r = cli("audio", "info", "-", "--format", "csv", input=f"{clips / 'a' / 't0.wav'}\n{clips / 'b' / 't1.flac'}\n")
    assert r.code == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "path,sample_rate,channels,frames,duration_s,format,subtype,nyquist_hz" and len(lines) == 3


def test_info_checks_device_and_runs_on_cpu(cli, clips, tmp_path):
    import torch

    if not torch.cuda.is_available():
        r = cli("audio", "info", clips, "--device", "cuda", "-o", tmp_path / "info.csv")
        assert r.code == 1 and r.stderr.startswith("error: --device cuda") and not (tmp_path / "info.csv").exists()
    r = cli("audio", "info", clips, "--device", "cpu", "--format", "csv")
    assert r.code == 0 and len(r.stdout.strip().splitlines()) == 5


def test_96k_stereo_is_resampled_and_mixed_down(cli, tmp_path):
    """A 96 kHz stereo file whose channels cancel except for a 1 kHz tone on the left: mixed to mono and
    resampled to 16 kHz, its spectrum peaks at 1 kHz with half the amplitude."""
    left = tone(1000, sr=96000, seconds=1.0)
    y = np.stack([left, np.zeros_like(left)], axis=1)
    src = write(tmp_path / "in" / "hi.wav", y, sr=96000, subtype="FLOAT")
    r = cli("audio", "spectrogram", src, "--kind", "stft", "--no-db", "--power", "1", "--n-fft", "1600",
            "--out", tmp_path / "out", "--device", "cpu")
    assert r.code == 0, r.stderr
    S = np.load(tmp_path / "out" / "hi.npy")
    assert S.shape == (801, 1 + 16000 // 400)  # 16 kHz: 10 Hz bins, 1 s at hop 400
    mid = S[:, 5:-5].mean(1)
    assert mid.argmax() == 100  # 1000 Hz
    # a Hann window's peak of a sine of amplitude a is a * n_fft / 4; the mono mix halves the left's 0.5
    assert mid[100] == pytest.approx(0.25 * 1600 / 4, rel=0.05)


def test_duration_crops_and_pads(cli, tmp_path):
    write(tmp_path / "in" / "short.wav", tone(440, seconds=0.3))
    write(tmp_path / "in" / "long.wav", tone(440, seconds=2.0))
    r = cli("audio", "mfcc", tmp_path / "in", "--duration", "1", "--hop", "160", "--out", tmp_path / "out",
            "--device", "cpu")
    assert r.code == 0, r.stderr
    for name in ("short", "long"):
        assert np.load(tmp_path / "out" / f"{name}.npy").shape == (13, 101)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_is_an_error_naming_it_and_nothing_is_written(cli, clips, tmp_path, kind):
    bad = bad_file(kind, clips / "a")
    out, table = tmp_path / "npy", tmp_path / "t.csv"
    r = cli("audio", "mfcc", clips, "--pool", "mean", "-o", table, "--out", out, "--device", "cpu")
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0] and "--skip-bad" in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not table.exists()
    r = cli("audio", "info", bad)
    assert r.code == 1 and str(bad) in r.stderr


def test_skip_bad_skips_with_a_warning_and_counts(cli, clips, tmp_path):
    bads = [bad_file(kind, clips / "a") for kind in BAD_KINDS]
    r = cli("audio", "mfcc", clips, "--pool", "mean", "--skip-bad", "--format", "jsonl", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert {row["path"] for row in _rows(r.stdout)} == {str(p) for p in clips.rglob("t*.*")}
    for b in bads:
        assert f"skipping unreadable audio '{b}'" in r.stderr
    assert "skipped 3 of 7 files" in r.stderr
    r = cli("audio", "info", clips, "--skip-bad", "--format", "jsonl")
    assert r.code == 0 and len(_rows(r.stdout)) == 4 and "skipped 3 of 7" in r.stderr


def test_not_an_audio_file_and_missing_input(cli, tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    r = cli("audio", "info", tmp_path / "x.txt")
    assert r.code == 1 and "not an audio file" in r.stderr
    r = cli("audio", "info", tmp_path / "nope.wav")
    assert r.code == 1 and "does not exist" in r.stderr
