"""vision classify train --loss triplet|contrastive|arcface, and predict/eval --gallery, through the CLI: the
network learns an embedding (no class layer), labels by the nearest class centroid of its training classes
or of a gallery folder (new classes without retraining), retrieval metrics equal an independent sklearn
reference, --threshold says "unknown", and bad input fails cleanly."""

import json

import numpy as np
import pytest
import torch

from tests.vision.conftest import write_digits

TINY = ["--embedding-dim", "16", "--model", "cnn_tiny", "--batch-size", "32", "--lr", "0.01", "--quiet",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Training classes 0, 1, 7; a gallery (5 each) and queries of the unseen classes 3 and 6."""
    base = tmp_path_factory.mktemp("metric")
    return {"train": write_digits(base / "train", 30), "test": write_digits(base / "test", 15, offset=60),
            "gallery": write_digits(base / "gallery", 5, classes=("3", "6")),
            "queries": write_digits(base / "queries", 15, offset=20, classes=("3", "6"))}


@pytest.fixture(scope="module")
def triplet(data, tmp_path_factory):
    from dltool.cli import main

    out = tmp_path_factory.mktemp("run") / "triplet"
    try:
        main(["vision", "classify", "train", str(data["train"]), "--loss", "triplet", "--epochs", "4",
              "--out", str(out), *TINY])
    except SystemExit as e:
        assert e.code == 0
    return out


def _embed(cli, model, folder) -> tuple[np.ndarray, np.ndarray]:
    r = cli("vision", "classify", "predict", model, folder, "--embed", "--format", "csv", "--device", "cpu")
    assert r.code == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    header = lines[0].split(",")
    cols = [i for i, h in enumerate(header) if h.startswith("emb")]
    rows = [line.split(",") for line in lines[1:]]
    return (np.array([[float(row[i]) for i in cols] for row in rows]),
            np.array([row[header.index("true_label")] for row in rows]))


def test_triplet_model_embeds_and_labels_its_classes_by_centroids(cli, data, triplet):
    ckpt = torch.load(triplet / "model.pt", weights_only=True)
    assert ckpt["arch_kwargs"]["num_classes"] == 16  # the output layer is the loss's projection, not the classes
    # the centroids live in the features beneath it (cnn_tiny's 8 channels)
    assert ckpt["embedding"]["loss"] == "triplet" and ckpt["embedding"]["centroids"].shape == (3, 8)
    rows = [json.loads(line) for line in (triplet / "metrics.jsonl").read_text().splitlines()]
    assert "val_precision_at_1" in rows[-1]
    r = cli("vision", "classify", "eval", triplet, data["test"], "--format", "json", "--device", "cpu")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["accuracy"] > 0.8 and m["reference"] == "leave-one-out"
    # an independent reference: leave-one-out 1-NN (cosine) over the --embed features, by sklearn
    from sklearn.neighbors import NearestNeighbors

    x, y = _embed(cli, triplet, data["test"])
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)  # unit embeddings
    idx = NearestNeighbors(n_neighbors=2, metric="cosine").fit(x).kneighbors(x, return_distance=False)[:, 1]
    assert m["precision_at_1"] == pytest.approx((y[idx] == y).mean(), abs=1e-6)


def test_gallery_adds_classes_without_retraining(cli, data, triplet, tmp_path):
    r = cli("vision", "classify", "predict", triplet, data["queries"], "--gallery", data["gallery"], "--format",
            "jsonl", "--device", "cpu")
    assert r.code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) == 30 and {rec["label"] for rec in recs} <= {"3", "6"}
    # the nearest centroid of the gallery's unit embeddings, computed here from --embed
    g, gy = _embed(cli, triplet, data["gallery"])
    q, qy = _embed(cli, triplet, data["queries"])
    cent = np.stack([g[gy == c].mean(0) for c in ("3", "6")])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    sims = q @ cent.T
    assert [rec["label"] for rec in recs] == [("3", "6")[i] for i in sims.argmax(1)]
    assert [rec["score"] for rec in recs] == pytest.approx(sims.max(1).tolist(), abs=1e-4)
    assert all(rec["distance"] == pytest.approx(1 - rec["score"], abs=1e-6) for rec in recs)

    ev = cli("vision", "classify", "eval", triplet, data["queries"], "--gallery", data["gallery"], "--format", "json",
             "--device", "cpu")
    assert ev.code == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["classes"] == ["3", "6"] and m["reference"] == "gallery"
    assert m["accuracy"] == pytest.approx(np.mean([rec["label"] == rec["true_label"] for rec in recs]))
    # precision@1 and MAP@R against the gallery, by hand from the same features (R = 5 gallery images)
    order = np.argsort(-(q @ g.T), axis=1, kind="stable")
    hits = gy[order[:, :5]] == qy[:, None]
    assert m["precision_at_1"] == pytest.approx(hits[:, 0].mean(), abs=1e-6)
    map_r = np.mean([(np.cumsum(h) / np.arange(1, 6) * h).sum() / 5 for h in hits])
    assert m["mean_average_precision_at_r"] == pytest.approx(map_r, abs=1e-6)

    r = cli("vision", "classify", "predict", triplet, data["queries"], "--gallery", data["gallery"], "--threshold",
            "0", "--format", "jsonl", "--device", "cpu")
    assert r.code == 0 and all(json.loads(line)["label"] == "unknown" for line in r.stdout.splitlines())
    r = cli("vision", "classify", "predict", triplet, data["queries"], "--threshold", "2", "--format", "jsonl",
            "--device", "cpu")  # no gallery: the model's own classes' centroids
    assert r.code == 0 and {json.loads(line)["label"] for line in r.stdout.splitlines()} <= {"0", "1", "7"}


def test_a_cross_entropy_model_labels_a_gallery_by_its_penultimate_features(cli, data, trained):
    r = cli("vision", "classify", "eval", trained, data["queries"], "--gallery", data["gallery"], "--format", "json",
            "--device", "cpu")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["classes"] == ["3", "6"] and 0 <= m["precision_at_1"] <= 1 and m["n"] == 30


@pytest.mark.parametrize("loss", ["arcface", "contrastive"])
def test_arcface_and_contrastive_learn(cli, data, tmp_path, loss):
    out = tmp_path / loss
    r = cli("vision", "classify", "train", data["train"], "--loss", loss, "--epochs", "3", "--out", out, *TINY)
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    if loss == "arcface":  # its class weights train with the head and resume, but stay out of model.pt
        assert any(k.endswith("metric_loss.W") for k in torch.load(out / "last.pt", weights_only=True)["state_dict"])
        assert not any("metric_loss" in k for k in torch.load(out / "model.pt", weights_only=True)["state_dict"])
    ev = cli("vision", "classify", "eval", out, data["test"], "--format", "json", "--device", "cpu")
    assert ev.code == 0, ev.stderr
    assert json.loads(ev.stdout)["precision_at_1"] > 0.7


def _fails(r, needle, *left):
    assert r.code == 1, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert not any(p.exists() for p in left)


def test_bad_input(cli, data, triplet, trained, tmp_path):
    gallery = write_digits(tmp_path / "gallery", 2, classes=("3",))
    (gallery / "6").mkdir()
    out = tmp_path / "preds.jsonl"
    _fails(cli("vision", "classify", "predict", triplet, data["queries"], "--gallery", gallery, "-o", out),
           "class folder", out)
    _fails(cli("vision", "classify", "eval", triplet, data["queries"], "--gallery", gallery, "--out", tmp_path / "e"),
           "has no images", tmp_path / "e")
    _fails(cli("vision", "classify", "predict", trained, data["queries"], "--threshold", "0.5", "-o", out),
           "--threshold", out)
    _fails(cli("vision", "classify", "predict", triplet, data["queries"], "--threshold", "3", "-o", out),
           "--threshold 3.0 must be in [0, 2]", out)
    _fails(cli("vision", "classify", "predict", triplet, data["queries"], "--embed", "--gallery", data["gallery"],
               "-o", out), "--embed", out)
    run = tmp_path / "run"
    _fails(cli("vision", "classify", "train", data["train"], "--loss", "triplet", "--adversarial", "fgsm", "--out",
               run, *TINY), "--adversarial", run)
    _fails(cli("vision", "classify", "train", data["train"], "--loss", "tripplet", "--out", run, *TINY),
           "did you mean 'triplet'", run)
    _fails(cli("vision", "classify", "train", data["train"], "--margin", "0.3", "--out", run, *TINY[2:]),
           "--margin does not apply to --loss ce", run)
    _fails(cli("vision", "classify", "prune", triplet, data["train"], "--out", run, "--quiet"), "metric loss", run)
    _fails(cli("vision", "classify", "eval", triplet / "last.pt", data["test"]), "no class centroids")


def test_a_metric_lenet_embeds_under_its_fully_connected_layers(cli, data, tmp_path):
    """fc120-fc84 join the projection head (they fold onto the training classes), the embedding is the
    conv output: 400 values, the centroids' size; a cross-entropy lenet keeps its 84."""
    r = cli("vision", "classify", "train", data["train"], "--loss", "arcface", "--model", "lenet", "--epochs", "1",
            "--embedding-dim", "16", "--batch-size", "32", "--out", tmp_path / "run", "--quiet", "--device", "cpu")
    assert r.code == 0, r.stderr
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["arch_kwargs"]["mlp_head"] is True and ckpt["embedding"]["centroids"].shape == (3, 400)
    assert not [k for k in ckpt["state_dict"] if "metric_loss" in k]  # ArcFace's class weights left out
    assert ckpt["state_dict"]["head.mlp.0.weight"].shape == (120, 400)
    from dltool.vision.models import MODELS

    assert MODELS.create("lenet", num_classes=3).forward_features(torch.rand(2, 1, 32, 32)).shape == (2, 84)
