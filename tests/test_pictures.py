"""Pictures a person reads without the README: what each one says, read off the figure as it is saved."""

from __future__ import annotations

import pytest

from tests.audio.conftest import tone, write
from tests.core.train_commands import GENERATE_VAE, VISION_CLASSIFY


@pytest.fixture
def saved_figures(monkeypatch):
    """{file name: the matplotlib figure saved to it}, for the figures the command saves."""
    import dltool.core.plots as plots

    figures = {}
    original = plots.save_figure

    def keep(fig, path):
        figures[str(path).rsplit("/", 1)[-1]] = fig
        original(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figures


def test_curves_mark_the_saved_epoch_and_the_confusion_matrix_says_what_it_shows(cli, tmp_path, saved_figures):
    import json

    data = VISION_CLASSIFY.make_data(tmp_path / "data")
    run = tmp_path / "run"
    assert cli(*VISION_CLASSIFY.command, data, "--out", run, *VISION_CLASSIFY.args).code == 0
    best = json.loads((run / "summary.json").read_text())["best_epoch"]
    loss, metrics = saved_figures["curves.png"].axes
    assert loss.get_ylabel() == "loss" and metrics.get_ylabel() and loss.get_xlabel() == "epoch"
    marks = [line for line in loss.get_lines() if line.get_linestyle() == "--"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [best, best]
    assert f"saved: epoch {best} (best val_accuracy)" in [t.get_text() for t in loss.get_legend().get_texts()]

    r = cli("vision", "classify", "eval", run, data, "--out", tmp_path / "eval", "--format", "json")
    accuracy = json.loads(r.stdout)["accuracy"]
    title = saved_figures["confusion.png"].axes[0].get_title().replace("\n", " ")
    assert title.startswith("cnn (") and str(data) in title and f"accuracy {accuracy:.3f}" in title


def test_sample_grids_are_at_least_256_px_wide_under_a_title(cli, tmp_path):
    import numpy as np
    from PIL import Image

    data = GENERATE_VAE.make_data(tmp_path / "data")
    run = tmp_path / "run"
    assert cli(*GENERATE_VAE.command, data, "--out", run, *GENERATE_VAE.args).code == 0  # 8 px images
    r = cli("generate", "sample", run, "--grid", tmp_path / "g.png", "-n", "4", "--device", "cpu")
    assert r.code == 0, r.stderr
    for path in (run / "samples" / "epoch_003.png", tmp_path / "g.png"):
        picture = np.asarray(Image.open(path).convert("L"))
        assert picture.shape[1] >= 256
        band = picture[:14]  # the title: dark text on white
        assert (band == 255).mean() > 0.5 and (band < 100).any()


@pytest.mark.parametrize("kind", ["stft", "mel"])
def test_spectrogram_frequency_ticks_stop_at_the_nyquist(cli, tmp_path, saved_figures, kind):
    wav = write(tmp_path / "a.wav", tone(440, sr=8000, seconds=0.5), sr=8000)
    r = cli("audio", "spectrogram", wav, "--sr", "8000", "--kind", kind, "--plot", tmp_path / "png")
    assert r.code == 0, r.stderr
    ax = saved_figures["a.png"].axes[0]
    low, high = ax.get_ylim()
    shown = [t for t in ax.get_yticks() if low <= t <= high]
    assert high <= 4000 and max(shown) <= 4000
