"""audio classify: a model that learns, eval/predict/export through the CLI, errors (every model's shapes: test_models.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.audio.conftest import TONE_CLASSES, bad_file, write_tone_classes

FAST = ["--sr", "8000", "--duration", "0.5", "--n-fft", "256", "--n-mels", "32", "--epochs", "4",
        "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    base = tmp_path_factory.mktemp("tones")
    return write_tone_classes(base / "train", per_class=16, seed=0), write_tone_classes(base / "test", 6, seed=100)


@pytest.fixture(scope="module")
def trained(tones, tmp_path_factory):
    """A log-mel CNN trained once, shared by the eval/predict/export tests."""
    from dltool.cli import main

    out = tmp_path_factory.mktemp("run") / "r"
    try:
        main(["audio", "classify", "train", str(tones[0]), "--model", "cnn_tiny", "--augment",
              "shift,freqmask", "--out", str(out), *FAST, "--epochs", "6"])
    except SystemExit as e:
        assert e.code in (0, None)
    return out


def test_train_writes_a_model_with_its_feature_settings(trained):
    from dltool.core.modelfile import load_model_file

    ckpt = load_model_file(trained / "model.pt", task="audio-classify")
    assert ckpt["arch"] == "cnn_tiny" and ckpt["classes"] == sorted(TONE_CLASSES)
    pre = ckpt["preprocess"]
    assert pre["features"]["kind"] == "mel" and pre["features"]["sr"] == 8000 and pre["features"]["n_mels"] == 32
    assert pre["duration"] == 0.5 and len(pre["mean"]) == len(pre["std"]) == 32
    assert (trained / "config.toml").exists() and (trained / "metrics.jsonl").exists()


def test_eval_reports_metrics_of_a_model_that_learned(cli, trained, tones, tmp_path):
    r = cli("audio", "classify", "eval", trained, tones[1], "--format", "json", "--out", tmp_path / "ev",
            "--device", "cpu")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["accuracy"] > 0.8 and m["n"] == 18
    assert np.array(m["confusion_matrix"]).sum() == 18 and (tmp_path / "ev" / "metrics.json").exists()


def test_predict_lines_agree_with_eval_and_embed_is_a_table(cli, trained, tones):
    r = cli("audio", "classify", "predict", trained, tones[1], "--topk", "2", "--format", "jsonl", "--device", "cpu")
    assert r.code == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 18 and all(len(x["topk"]) == 2 and x["topk"][0]["label"] == x["label"] for x in lines)
    assert sum(x["label"] == x["true_label"] for x in lines) / 18 > 0.8
    r = cli("audio", "classify", "predict", trained, "-", "--embed", "--format", "jsonl", "--device", "cpu",
            input=f"{sorted((tones[1] / 'low').iterdir())[0]}\n")
    assert r.code == 0, r.stderr
    row = json.loads(r.stdout)
    assert "path" in row and "emb0" in row and "true_label" not in row


def test_export_onnx_from_the_waveform_matches_predict(cli, trained, tones, tmp_path):
    import onnxruntime as ort

    from dltool.audio import classify, io
    from dltool.core.inputs import scan_inputs

    onnx = tmp_path / "m.onnx"
    r = cli("audio", "classify", "export", trained, "-o", onnx)
    assert r.code == 0, r.stderr
    spec = json.loads((tmp_path / "m.onnx.json").read_text())
    assert spec["from"] == "waveform" and spec["input"]["shape"] == ["N", 4000] and spec["input"]["sample_rate"] == 8000
    items = scan_inputs([str(tones[1] / "high")], io.AUDIO)
    waves, _ = io.load(items, sr=8000, duration=0.5, device=torch.device("cpu"), skip_bad=False)
    x = torch.stack(waves)
    got = ort.InferenceSession(str(onnx)).run(None, {"waveform": x.numpy()})[0]
    lm = classify.load(trained, torch.device("cpu"))
    with torch.inference_mode():
        want = lm.model(lm.task.prepare(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_mfcc_features_and_csv_data(cli, tones, tmp_path):
    csv = tmp_path / "list.csv"
    rows = [f"{p},{p.parent.name}" for p in sorted(tones[0].rglob("*.wav"))]
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    r = cli("audio", "classify", "train", csv, "--model", "conv1d_tiny", "--features", "mfcc", "--n-mfcc", "13",
            "--out", out, *FAST, "--epochs", "1", "--format", "json")
    assert r.code == 0, r.stderr
    from dltool.core.modelfile import load_model_file

    assert load_model_file(out / "model.pt")["preprocess"]["features"]["kind"] == "mfcc"


def test_train_errors(cli, tones, tmp_path):
    r = cli("audio", "classify", "train", tones[0], "--model", "resnet_tiny", "--activation", "gelu",
            "--out", tmp_path / "a", *FAST)
    assert r.code == 1 and "--activation does not apply to --model resnet_tiny" in r.stderr
    r = cli("audio", "classify", "train", tones[0], "--augment", "flip", "--out", tmp_path / "b", *FAST)
    assert r.code == 1 and "unknown --augment op 'flip'" in r.stderr
    r = cli("audio", "classify", "train", tones[0], "--out", tmp_path / "c", *FAST, "--n-mels", "200")
    assert r.code == 1 and "--n-mels 200 is too many" in r.stderr
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "abc")


def test_train_names_a_corrupt_clip_or_skips_it(cli, tones, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tones[0], data)
    bad = bad_file("truncated", data / "low")
    r = cli("audio", "classify", "train", data, "--model", "conv1d_tiny", "--out", tmp_path / "r1", *FAST)
    assert r.code == 1 and str(bad) in r.stderr and "--skip-bad" in r.stderr
    assert not (tmp_path / "r1" / "model.pt").exists()
    r = cli("audio", "classify", "train", data, "--model", "conv1d_tiny", "--out", tmp_path / "r2", "--skip-bad",
            *FAST[:-1], "--epochs", "1")
    assert r.code == 0, r.stderr
    assert "skipped 1 of 49 files" in r.stderr and (tmp_path / "r2" / "model.pt").exists()


def test_predict_and_mfcc_shards_concatenate_to_the_whole(cli, trained, tones):
    from tests.conftest import assert_shards_concatenate

    assert_shards_concatenate(cli, "audio", "classify", "predict", trained, tones[1])
    assert_shards_concatenate(cli, "audio", "classify", "predict", trained, tones[1], "--embed")
    assert_shards_concatenate(cli, "audio", "mfcc", tones[1], "--pool", "mean", "--sr", "8000", shards=3)
