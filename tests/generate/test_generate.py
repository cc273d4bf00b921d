"""generate sample | interpolate | score through the CLI, and bad input to every generate command. Training
itself (learning, --nproc 2, interrupt + exact resume) is covered per family by the engine's tests over
tests/core/train_commands.py; the sample-quality bars are pipelines/generate.mk's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_main
from tests.vision.conftest import write_digits

TINY = ("--img-size", "8", "--batch-size", "8", "--epochs", "1", "--device", "cpu", "--quiet", "--format", "json")


def _train(capsys, *args):
    r = run_main(capsys, args)
    assert r.code == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny real digits (class folders, and the same images flat), a 1-epoch cGAN and VAE, and a digits
    classifier, shared by the tests below."""
    import shutil

    from dltool.cli import main
    from dltool.core.console import set_quiet

    base = tmp_path_factory.mktemp("gen")
    digits = write_digits(base / "digits", 16)
    flat = base / "flat"
    flat.mkdir()
    for p in digits.rglob("*.png"):
        shutil.copy(p, flat / p.name)
    for args in (("generate", "gan", "train", digits, "--kind", "cgan", "--model", "dcgan_tiny", "--out", base / "cgan"),
                 ("generate", "vae", "train", flat, "--model", "vae_tiny", "--out", base / "vae"),
                 ("vision", "classify", "train", digits, "--model", "cnn", "--width", "8", "--epochs", "4",
                  "--batch-size", "16", "--lr", "0.01", "--out", base / "clf", "--quiet", "--format", "json")):
        tiny = TINY if args[0] == "generate" else ()
        try:
            main([str(a) for a in (*args, *tiny)])
        except SystemExit as e:
            assert e.code in (0, None)
        finally:
            set_quiet(False)
    return {"base": base, "digits": digits, "flat": flat, "cgan": base / "cgan" / "model.pt",
            "vae": base / "vae" / "model.pt", "clf": base / "clf" / "model.pt"}


def _json(r):
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_sample_writes_a_grid_and_files_reproducibly(cli, runs, tmp_path):
    args = ("generate", "sample", runs["vae"], "-n", "6", "--nrow", "3", "--device", "cpu", "--format", "json")
    a = _json(cli(*args, "--grid", tmp_path / "a.png", "--out", tmp_path / "a", "--seed", "3"))
    assert a["n"] == 6 and a["family"] == "vae"
    _json(cli(*args, "--grid", tmp_path / "b.png", "--seed", "3"))
    _json(cli(*args, "--grid", tmp_path / "c.png", "--seed", "4"))
    grid = np.array(Image.open(tmp_path / "a.png"))
    # 2 rows x 3 columns of 8 px with 2 px padding, grayscale, enlarged 8x to 256 px wide, under a title band
    assert grid.ndim == 2 and grid.shape[1] == 8 * (3 * 10 + 2) and 0 < grid.shape[0] - 8 * (2 * 10 + 2) < 30
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    files = sorted((tmp_path / "a").glob("*.png"))
    assert [p.name for p in files] == [f"sample_{i:05d}.png" for i in range(6)]
    assert np.array(Image.open(files[0])).shape == (8, 8)


def test_cgan_samples_a_class_and_score_reports_its_accuracy(cli, runs, tmp_path):
    samples = tmp_path / "samples"
    r = _json(cli("generate", "sample", runs["cgan"], "-n", "12", "--class", "7", "--out", samples / "7",
                  "--device", "cpu", "--format", "json"))
    assert r["class"] == "7"
    s = _json(cli("generate", "score", samples, runs["digits"], "--classifier", runs["clf"], "--device", "cpu",
                  "--format", "json"))
    assert s["n_samples"] == 12 and s["n_real"] == 48
    assert set(s["per_class_accuracy"]) == {"7"} and s["class_accuracy"] == s["per_class_accuracy"]["7"]
    assert s["class_accuracy"] == s["class_counts"]["7"] / 12
    assert s["fd"] > 0 and 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1


def test_score_of_real_images_against_themselves(cli, runs):
    """The floor: identical sets have Fréchet distance 0 and precision = recall = 1; the confidence is
    the mean top score that `vision classify predict` reports for the same images."""
    s = _json(cli("generate", "score", runs["digits"], runs["digits"], "--classifier", runs["clf"], "--device", "cpu",
                  "--format", "json"))
    assert abs(s["fd"]) < 1e-6 and s["precision"] == 1.0 and s["recall"] == 1.0
    p = cli("vision", "classify", "predict", runs["clf"], runs["digits"], "--device", "cpu", "--format", "jsonl")
    assert p.code == 0, p.stderr
    scores = [json.loads(line)["score"] for line in p.stdout.splitlines()]
    assert s["mean_confidence"] == pytest.approx(np.mean(scores), abs=1e-5)
    assert s["coverage"] == 1.0 and sum(s["class_counts"].values()) == 48


def test_interpolate_writes_rows_between_two_latents(cli, runs, tmp_path):
    for model in (runs["vae"], runs["cgan"]):
        out = tmp_path / f"{model.parent.name}.png"
        r = _json(cli("generate", "interpolate", model, "--steps", "5", "--rows", "2", "--grid", out, "--device", "cpu",
                      "--format", "json"))
        assert r["steps"] == 5
        grid = np.array(Image.open(out)).astype(int)
        assert grid.shape[1] == 5 * (5 * 10 + 2)  # enlarged 5x to 256 px or more, under a title band
        grid = grid[-5 * (2 * 10 + 2):][::5, ::5]  # the images at their own size
        assert grid.shape == (2 * 10 + 2, 5 * 10 + 2)
        first, last = grid[2:10, 2:10], grid[2:10, 42:50]
        assert np.abs(first - last).sum() > 0  # the two ends are different images


# -- bad input ---------------------------------------------------------------------------------

def _fails(r, *words):
    assert r.code == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_empty_folder_fails_cleanly(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    for family in ("vae", "gan", "diffusion", "pixelcnn"):
        r = cli("generate", family, "train", tmp_path / "empty", "--out", tmp_path / family, "--device", "cpu")
        _fails(r, "no images found")
        assert not (tmp_path / family / "model.pt").exists()


def test_images_of_mixed_sizes_are_resized(cli, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "mixed"
    data.mkdir()
    for i, (w, h) in enumerate([(8, 8), (12, 10), (20, 31), (5, 7)] * 3):
        Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8), mode="L").save(data / f"{i}.png")
    r = _json(cli("generate", "pixelcnn", "train", data, "--model", "pixelcnn_tiny", "--val-split", "0.25",
                  "--out", tmp_path / "run", *TINY))
    assert r["epochs_run"] == 1
    import torch

    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["preprocess"] == {"img_size": 8, "mode": "L"}


def test_class_on_an_unconditional_model_fails(cli, runs, tmp_path):
    r = cli("generate", "sample", runs["vae"], "-n", "4", "--class", "7", "--grid", tmp_path / "g.png")
    _fails(r, "--class 7", "unconditional")
    assert not (tmp_path / "g.png").exists()
    r = cli("generate", "sample", runs["cgan"], "-n", "4", "--class", "9", "--grid", tmp_path / "g.png")
    _fails(r, "--class '9'", "0, 1, 7")


def test_a_vae_where_a_gan_is_expected_fails(cli, runs, tmp_path):
    run = runs["vae"].parent
    r = cli("generate", "gan", "train", runs["flat"], "--out", run, "--resume", *TINY)
    _fails(r, "--resume", "--model (was 'vae_tiny', now 'dcgan')")
    r = cli("generate", "sample", runs["vae"], "--sampler", "ddim", "--grid", tmp_path / "g.png")
    _fails(r, "--sampler", "vae model")
    r = cli("generate", "interpolate", runs["clf"], "--grid", tmp_path / "g.png")
    _fails(r, "'vision-classify' model", "generate-vae or generate-gan")
    assert not (tmp_path / "g.png").exists()


def test_bad_options_fail_before_training(cli, runs, tmp_path):
    out = tmp_path / "run"
    cases = [
        (("gan", "train", runs["flat"], "--kind", "cgan"), ("flat folder", "class sub-folders")),
        (("gan", "train", runs["digits"], "--kind", "wgan"), ("unknown GAN kind 'wgan'", "did you mean")),
        (("gan", "train", runs["digits"], "--model", "vae"), ("vae network, not a gan one",)),
        (("vae", "train", runs["digits"], "--img-size", "12"), ("--img-size 12",)),
        (("diffusion", "train", runs["digits"], "--schedule", "cosin"), ("unknown schedule 'cosin'", "cosine")),
    ]
    for args, words in cases:
        _fails(cli("generate", *args, "--out", out, "--device", "cpu"), *words)
        assert not (out / "model.pt").exists()


def test_a_run_shorter_than_sample_every_still_ends_with_a_grid(runs):
    """1 epoch against --sample-every 5: the last epoch writes its grid anyway (issue 29)."""
    from PIL import Image

    grids = sorted((runs["base"] / "vae" / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["epoch_001.png"]
    assert Image.open(grids[0]).size[0] > 0
