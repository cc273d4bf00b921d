"""vision classify explain through the CLI: maps, overlays and records for every method; faithfulness
figures against a random order and an independent pointing game; the sanity check of Adebayo et al."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

METHODS = ("gradcam", "gradcam++", "saliency", "integrated-gradients", "occlusion")


@pytest.fixture(scope="module")
def few(digits, tmp_path_factory):
    """Six test digits, two of each class, in class folders."""
    root = tmp_path_factory.mktemp("few")
    for c in ("0", "1", "7"):
        (root / c).mkdir()
        for p in sorted((digits[1] / c).iterdir())[:2]:
            (root / c / p.name).write_bytes(p.read_bytes())
    return root


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_overlays_maps_and_records(cli, trained, few, tmp_path, method):
    out = tmp_path / "maps"
    r = cli("vision", "classify", "explain", trained, few, "--method", method, "--out", out, "--format", "jsonl")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    preds = {json.loads(line)["path"]: json.loads(line)
             for line in cli("vision", "classify", "predict", trained, few).stdout.splitlines()}
    assert len(rows) == 6
    for row in rows:
        assert row["label"] == preds[row["path"]]["label"] and row["target"] == row["label"]
        assert row["score"] == pytest.approx(preds[row["path"]]["score"], abs=1e-4)
        heat = np.load(row["map"])
        assert heat.shape == (8, 8) and np.isfinite(heat).all() and np.abs(heat).max() > 0
        with Image.open(row["overlay"]) as im:
            assert im.size == (128, 128) and im.mode == "RGB"
    # the maps mirror the inputs' class folders
    assert sorted(p.relative_to(out).parts[0] for p in out.rglob("*.npy")) == ["0", "0", "1", "1", "7", "7"]


def test_target_true_and_a_class_name(cli, trained, few, tmp_path):
    r = cli("vision", "classify", "explain", trained, few, "--target", "7", "--out", tmp_path / "a", "--format", "jsonl")
    assert r.code == 0, r.stderr
    assert {json.loads(line)["target"] for line in r.stdout.splitlines()} == {"7"}
    r = cli("vision", "classify", "explain", trained, few, "--target", "true", "--out", tmp_path / "b", "--format", "jsonl")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(row["target"] == row["true_label"] for row in rows)


def test_integrated_gradients_deletion_beats_random_and_the_pointing_game(cli, trained, digits, tmp_path):
    """--check: deleting pixels in the order of integrated gradients drops the class score faster than a
    random order; --masks (here each digit's own strokes) gives the share of maps whose maximum lies on
    the object, equal to one computed from the saved maps."""
    out = tmp_path / "ig"
    r = cli("vision", "classify", "explain", trained, digits[1], "--method", "integrated-gradients", "--check",
            "--masks", digits[1], "--out", out, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["n"] == 60 and m["method"] == "integrated-gradients"
    assert m["deletion_auc"] < m["deletion_random_auc"] and m["deletion_beats_random"]
    assert m["insertion_auc"] > m["insertion_random_auc"]
    rows = [json.loads(line) for line in (out / "explanations.jsonl").read_text().splitlines()]
    hits = []
    for row in rows:
        heat = np.load(row["map"])
        stroke = np.asarray(Image.open(row["path"])) > 0
        hits.append(stroke.reshape(-1)[heat.reshape(-1).argmax()])
    assert m["pointing_game"] == pytest.approx(np.mean(hits))


def test_sanity_check_reinitialised_weights_change_gradcam(cli, trained, digits, tmp_path):
    """Adebayo et al. 2018: Grad-CAM of the network with its weights re-initialised must not look like the
    trained network's (Spearman rank correlation of the maps below 0.5)."""
    from scipy.stats import spearmanr

    from dltool.vision.models import create_model

    ckpt = torch.load(trained / "model.pt", weights_only=True)
    torch.manual_seed(1)
    ckpt["state_dict"] = create_model(ckpt["arch"], **ckpt["arch_kwargs"]).state_dict()
    torch.save(ckpt, tmp_path / "random.pt")
    maps = {}
    for name, model in (("trained", trained / "model.pt"), ("random", tmp_path / "random.pt")):
        r = cli("vision", "classify", "explain", model, digits[1], "--target", "true", "--out", tmp_path / name,
                "--format", "jsonl")
        assert r.code == 0, r.stderr
        maps[name] = {json.loads(line)["path"]: np.load(json.loads(line)["map"]) for line in r.stdout.splitlines()}
    rhos = []
    for path, heat in maps["trained"].items():
        rho = spearmanr(heat.ravel(), maps["random"][path].ravel()).statistic
        rhos.append(0.0 if np.isnan(rho) else rho)  # a constant map (all zero) ranks like nothing
    assert np.mean(rhos) < 0.5, np.mean(rhos)


def test_a_layer_that_does_not_exist_is_refused_with_names(cli, trained, few, tmp_path):
    out = tmp_path / "maps"
    r = cli("vision", "classify", "explain", trained, few, "--layer", "features.7x", "--out", out)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--layer 'features.7x'" in lines[0] and "features." in lines[0].split("—")[1]
    assert not out.exists()
    r = cli("vision", "classify", "explain", trained, few, "--layer", "features.3", "--out", out, "--format", "jsonl")
    assert r.code == 0, r.stderr


@pytest.mark.parametrize("args,message", [
    (("--method", "saliency", "--layer", "features.3"), "--layer does not apply to --method saliency"),
    (("--method", "gradcam", "--ig-steps", "8"), "--ig-steps does not apply to --method gradcam"),
    (("--method", "lime"), "unknown method 'lime'"),
    (("--target", "8"), "--target '8' is not one of the model's classes"),
])
def test_bad_options_exit_1_and_leave_nothing(cli, trained, few, tmp_path, args, message):
    out = tmp_path / "maps"
    r = cli("vision", "classify", "explain", trained, few, *args, "--out", out)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("size,side", [(8, 8), (16, 8), (32, 8), (64, 8)])
def test_the_default_gradcam_layer_is_fine_enough_to_point(size, side):
    """The default layer is the last feature map with sides of at least 7 (the input's when smaller): for
    the `cnn` on 8x8 digits its first stage, not the 2x2 map two poolings later, whose upsampled maximum
    lands in a corner; at 32 px its 8x8 last stage, not the 4x4 map after the last pooling."""
    from dltool.vision.explain import find_layer
    from dltool.vision.models import create_model

    net = create_model("cnn", num_classes=3, in_channels=3).eval()
    x = torch.zeros(1, 3, size, size)
    _, layer = find_layer(net, x, None)
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("shape", o.shape))
    with torch.no_grad():
        net(x)
    handle.remove()
    assert seen["shape"][-2:] == (side, side)
