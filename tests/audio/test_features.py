"""Spectrograms and MFCCs: equal to librosa's with matched parameters, tables that pipe, pictures, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.audio.conftest import LOW_TONES, tone, write

SR, N_FFT, HOP, N_MELS = 16000, 512, 128, 40


@pytest.fixture
def pair(tmp_path):
    """Two clips of different loudness in one batch: dB clipping must follow each clip's own peak."""
    rng = np.random.default_rng(1)
    loud = tone(440, seed=3) + 0.2 * np.sin(2 * np.pi * 3000 * np.arange(SR) / SR).astype(np.float32)
    quiet = (0.01 * rng.standard_normal(SR)).astype(np.float32)
    folder = tmp_path / "in"
    return [write(folder / "loud.wav", loud, subtype="FLOAT"), write(folder / "quiet.wav", quiet, subtype="FLOAT")]


def _librosa_signal(path):
    import librosa

    y, _ = librosa.load(path, sr=None)
    return y


def test_mel_spectrogram_matches_librosa(cli, pair, tmp_path):
    import librosa

    r = cli("audio", "spectrogram", pair[0].parent, "--kind", "mel", "--sr", SR, "--n-fft", N_FFT, "--hop", HOP,
            "--n-mels", N_MELS, "--fmin", "50", "--fmax", "7000", "--out", tmp_path / "mel", "--device", "cpu")
    assert r.code == 0, r.stderr
    for p in pair:
        ours = np.load(tmp_path / "mel" / f"{p.stem}.npy")
        S = librosa.feature.melspectrogram(y=_librosa_signal(p), sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                           fmin=50, fmax=7000)
        ref = librosa.power_to_db(S, ref=1.0, top_db=80.0)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-3)  # dB; float32 against librosa's float32


def test_mfcc_matches_librosa(cli, pair, tmp_path):
    import librosa

    r = cli("audio", "mfcc", *pair, "--n-mfcc", "20", "--sr", SR, "--n-fft", N_FFT, "--hop", HOP,
            "--n-mels", N_MELS, "--deltas", "2", "--out", tmp_path / "mfcc", "--device", "cpu")
    assert r.code == 0, r.stderr
    for p in pair:
        ours = np.load(tmp_path / "mfcc" / f"{p.stem}.npy")
        ref = librosa.feature.mfcc(y=_librosa_signal(p), sr=SR, n_mfcc=20, n_fft=N_FFT, hop_length=HOP,
                                   n_mels=N_MELS)
        assert ours.shape == (60, ref.shape[1])
        np.testing.assert_allclose(ours[:20], ref, atol=2e-3 * np.abs(ref).max())
        # deltas: the same 9-frame regression; only the 4 edge frames differ (repeat vs interpolate)
        d1 = librosa.feature.delta(ref, width=9, order=1)
        np.testing.assert_allclose(ours[20:40, 4:-4], d1[:, 4:-4], atol=2e-3 * np.abs(d1).max())


def test_pooled_table_pipes_into_reduce_and_cluster(cli, clips, tmp_path):
    table = tmp_path / "mfcc.jsonl"
    r = cli("audio", "mfcc", clips, "--pool", "meanstd", "-o", table, "--device", "cpu")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == 4 and list(rows[0])[:3] == ["path", "mfcc0_mean", "mfcc1_mean"]
    assert "mfcc12_std" in rows[0]
    # the mean column is the mean over frames of the per-file MFCCs
    r = cli("audio", "mfcc", clips / "a" / "t0.wav", "--out", tmp_path / "npy", "--device", "cpu")
    assert r.code == 0
    assert rows[0]["mfcc3_mean"] == pytest.approx(float(np.load(tmp_path / "npy" / "t0.npy")[3].mean()), rel=1e-5)
    reduced = tmp_path / "pca.jsonl"
    r = cli("reduce", "pca", table, "-n", "2", "-o", reduced, "--device", "cpu")
    assert r.code == 0, r.stderr
    r = cli("cluster", "kmeans", reduced, "-k", "2", "--format", "jsonl", "--device", "cpu")
    assert r.code == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["path"] for o in out] == [row["path"] for row in rows]
    by_folder = {}
    for o in out:
        by_folder.setdefault("a" if "/a/" in o["path"] else "b", set()).add(o["cluster"])
    assert len(by_folder["a"]) == len(by_folder["b"]) == 1 != len(by_folder["a"] | by_folder["b"])  # low vs high


def test_out_mirrors_the_tree_and_plot_draws_each_file(cli, clips, tmp_path):
    r = cli("audio", "spectrogram", clips, "--kind", "stft", "--out", tmp_path / "npy", "--plot", tmp_path / "png",
            "--device", "cpu")
    assert r.code == 0, r.stderr
    assert sorted(str(p.relative_to(tmp_path / "npy")) for p in (tmp_path / "npy").rglob("*.npy")) == \
        ["a/t0.npy", "a/t1.npy", "b/t0.npy", "b/t1.npy"]
    assert np.load(tmp_path / "npy" / "a" / "t0.npy").shape == (257, 126)
    pngs = sorted((tmp_path / "png").rglob("*.png"))
    assert len(pngs) == 4 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cqt_runs_on_cpu_with_librosa(cli, clips, tmp_path):
    import librosa

    wav = clips / "a" / "t0.wav"
    r = cli("audio", "spectrogram", wav, "--kind", "cqt", "--hop", "256", "--n-bins", "48", "--out", tmp_path)
    assert r.code == 0, r.stderr
    ours = np.load(tmp_path / "t0.npy")
    C = np.abs(librosa.cqt(_librosa_signal(wav), sr=SR, hop_length=256, n_bins=48))
    np.testing.assert_allclose(ours, librosa.power_to_db(C**2, top_db=80.0), atol=1e-3)
    # 12 bins per octave from C1 (32.7 Hz): a 220 Hz tone (A3) sits 33 semitones up
    assert ours[:, 5:-5].mean(1).argmax() == round(12 * np.log2(LOW_TONES[0] / 32.703))


def test_cqt_on_a_clip_shorter_than_its_lowest_window_says_once_which_fmin_fits(cli, tmp_path):
    short = write(tmp_path / "clips" / "short.wav", tone(440, seconds=0.5))
    write(tmp_path / "clips" / "long.wav", tone(440, seconds=0.9))
    r = cli("audio", "spectrogram", tmp_path / "clips", "--kind", "cqt", "--hop", "256", "--n-bins", "48",
            "--out", tmp_path / "a")
    assert r.code == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "a clip of 8000 samples" in warnings[0] and "n_fft" not in r.stderr, r.stderr
    fmin = warnings[0].split("--fmin ")[-1].split()[0]
    r = cli("audio", "spectrogram", short, "--kind", "cqt", "--hop", "256", "--n-bins", "48", "--fmin", fmin,
            "--out", tmp_path / "b")
    assert r.code == 0 and "warning" not in r.stderr, r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--n-mels", "256", "--n-fft", "256", "--sr", "8000"), "--n-mels 256 is too many for --n-fft 256"),
    (("--fmax", "9000"), "--fmax 9000.0 must be in (0, 8000]"),
    (("--n-mfcc", "80", "--n-mels", "40"), "--n-mfcc 80 must be between 1 and --n-mels 40"),
    (("--deltas", "3"), "--deltas 3 must be 0, 1 or 2"),
    (("--pool", "median"), "unknown --pool 'median'"),
])
def test_impossible_options_are_clear_errors(cli, clips, tmp_path, args, message):
    r = cli("audio", "mfcc", clips, "--out", tmp_path / "o", "--device", "cpu", *args)
    assert r.code == 1, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_nothing_to_write_and_cuda_without_cuda(cli, clips):
    r = cli("audio", "mfcc", clips, "--device", "cpu")
    assert r.code == 1 and "nothing to write" in r.stderr
    import torch

    if not torch.cuda.is_available():
        r = cli("audio", "mfcc", clips, "--pool", "mean", "--device", "cuda")
        assert r.code == 1 and "CUDA is not available" in r.stderr


@pytest.mark.gpu
def test_features_on_gpu_match_cpu(cli, pair, tmp_path):
    for dev in ("cpu", "cuda"):
        r = cli("audio", "mfcc", *pair, "--out", tmp_path / dev, "--device", dev)
        assert r.code == 0, r.stderr
    for p in pair:
        np.testing.assert_allclose(np.load(tmp_path / "cuda" / f"{p.stem}.npy"),
                                   np.load(tmp_path / "cpu" / f"{p.stem}.npy"), atol=1e-2)
