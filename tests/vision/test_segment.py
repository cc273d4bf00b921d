"""vision segment through the CLI on tiny shapes images: it learns, metrics match sklearn, tiles keep the
image's size, bad data fails cleanly, every segmenter trains and predicts, exports match onnxruntime."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.vision.seg_data import write_shapes

# 40 epochs of 5 steps: the fewest in which this U-Net gets past predicting background (mean IoU 0.21)
# and finds the shapes (about 45 CPU-seconds, one thread)
FAST = ["--model", "unet", "--width", "16", "--depth", "2", "--epochs", "40", "--batch-size", "8", "--lr", "0.003",
        "--augment", "flip", "--loss", "ce", "--val-split", "0.1", "--device", "cpu", "--quiet"]
# on the 12 test images predicting background alone scores 0.21; this run 0.25-0.32 by machine and threads
MIOU_BAR = 0.245


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    base = tmp_path_factory.mktemp("shapes")
    return write_shapes(base / "train", 48, seed=0), write_shapes(base / "test", 12, seed=1)


@pytest.fixture(scope="session")
def seg_trained(shapes, tmp_path_factory):
    from dltool.cli import main

    out = tmp_path_factory.mktemp("segrun") / "r"
    try:
        main(["vision", "segment", "train", str(shapes[0]), "--out", str(out), *FAST])
    except SystemExit as e:
        assert e.code == 0
    return out


def _read(path) -> np.ndarray:
    return np.array(Image.open(path))


def test_train_learns_and_eval_matches_sklearn_on_the_predicted_masks(cli, shapes, seg_trained, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score

    summary = json.loads((seg_trained / "summary.json").read_text())
    ckpt = torch.load(seg_trained / "model.pt", weights_only=True)
    assert ckpt["task"] == "vision-segment" and ckpt["classes"] == ["background", "circle", "square", "triangle"]
    r = cli("vision", "segment", "eval", seg_trained, shapes[1], "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    rows = [json.loads(line) for line in (seg_trained / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"] and summary["val_pixel_accuracy"] > 0.7
    background_only = m["per_class"]["background"]["pixels"] / np.array(m["confusion_matrix"]).sum() / 4
    assert m["miou"] > MIOU_BAR > background_only + 0.04  # it found shapes, not only the background
    r = cli("vision", "segment", "predict", seg_trained, shapes[1], "--out", tmp_path / "p", "--device", "cpu",
            "--save-vis", tmp_path / "vis", "--format", "jsonl")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 12 and all(abs(sum(row["classes"].values()) - 1) < 1e-4 for row in rows)
    truth = np.concatenate([_read(shapes[1] / "masks" / (Path(row["path"]).stem + ".png")).ravel() for row in rows])
    pred = np.concatenate([_read(row["mask"]).ravel() for row in rows])
    labels = [0, 1, 2, 3]
    assert m["miou"] == pytest.approx(jaccard_score(truth, pred, labels=labels, average="macro"), abs=1e-9)
    assert m["dice"] == pytest.approx(f1_score(truth, pred, labels=labels, average="macro"), abs=1e-9)
    assert m["pixel_accuracy"] == pytest.approx(accuracy_score(truth, pred), abs=1e-9)
    assert np.array(m["confusion_matrix"]).sum() == truth.size
    colour = Image.open(rows[0]["colour"])
    assert colour.mode == "P" and np.array_equal(np.array(colour), _read(rows[0]["mask"]))
    assert len(list((tmp_path / "vis").glob("*.png"))) == 12


def test_scores_match_sklearn_with_absent_classes():
    from sklearn.metrics import confusion_matrix, jaccard_score

    from dltool.vision.segment import scores

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 500), rng.integers(0, 3, 500)  # class 3 in neither: left out of the means
    s = scores(confusion_matrix(y, p, labels=[0, 1, 2, 3]))
    np.testing.assert_allclose(s["iou_per_class"][:3], jaccard_score(y, p, average=None))
    assert np.isnan(s["iou_per_class"][3]) and s["miou"] == pytest.approx(jaccard_score(y, p, average="macro"))


def _mosaic(paths: list[Path], side: int) -> np.ndarray:
    """side x side images (or masks) of one size, row by row, as one picture."""
    rows = [np.concatenate([_read(p) for p in paths[r * side:(r + 1) * side]], axis=1) for r in range(side)]
    return np.concatenate(rows, axis=0)


def test_tiles_give_the_images_own_size_and_agree_with_whole_images(cli, shapes, seg_trained, tmp_path):
    """The issue's bar: an image larger than the training size (32 px) is predicted in overlapping tiles
    at its own size; on the test set, tiled, the mean IoU is that of predicting each image whole."""
    images = sorted((shapes[1] / "images").glob("*.png"))
    masks = [shapes[1] / "masks" / p.name for p in images]
    Image.fromarray(_mosaic((images * 2)[:16], 4)).save(tmp_path / "big.png")  # 128 px: 4x the side
    r = cli("vision", "segment", "predict", seg_trained, tmp_path / "big.png", "--out", tmp_path / "p",
            "--device", "cpu", "--format", "jsonl")
    assert r.code == 0, r.stderr
    assert _read(json.loads(r.stdout)["mask"]).shape == (128, 128)
    Image.open(tmp_path / "big.png").crop((0, 0, 128, 20)).save(tmp_path / "strip.png")  # one side under a tile
    r = cli("vision", "segment", "predict", seg_trained, tmp_path / "strip.png", "--out", tmp_path / "s",
            "--device", "cpu", "--format", "jsonl")
    assert r.code == 0, r.stderr
    assert _read(json.loads(r.stdout)["mask"]).shape == (20, 128)
    # the 12 test images as three 2x2 mosaics (4x the training size each): the same pixels, so the same
    # mean IoU when tiles of the training size see what the whole images see
    tiled_set = tmp_path / "mosaics"
    for sub in ("images", "masks"):
        (tiled_set / sub).mkdir(parents=True)
    for k in range(3):
        Image.fromarray(_mosaic(images[4 * k:4 * k + 4], 2)).save(tiled_set / "images" / f"m{k}.png")
        Image.fromarray(_mosaic(masks[4 * k:4 * k + 4], 2)).save(tiled_set / "masks" / f"m{k}.png")
    shutil.copy(shapes[1] / "classes.txt", tiled_set / "classes.txt")
    whole = json.loads(cli("vision", "segment", "eval", seg_trained, shapes[1], "--format", "json").stdout)
    tiled = json.loads(cli("vision", "segment", "eval", seg_trained, tiled_set, "--format", "json").stdout)
    assert tiled["tile"] == whole["tile"] == 32
    assert np.array(tiled["confusion_matrix"]).sum() == np.array(whole["confusion_matrix"]).sum() == 12 * 32 * 32
    assert tiled["miou"] == pytest.approx(whole["miou"], abs=0.02)


def test_geometric_augmentation_moves_the_mask_with_the_image():
    from dltool.vision.augment import augment_with_mask

    torch.manual_seed(0)
    blocks = torch.randint(0, 4, (8, 4, 4), dtype=torch.uint8)
    mask = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # 32 x 32 of 8-px regions
    image = (mask.float() / 3)[:, None].repeat(1, 3, 1, 1)  # the image shows its mask
    for op in ("flip", "rot90"):
        x, m = augment_with_mask(image, mask, (op,))
        assert torch.equal((x[:, 0] * 3).round().to(torch.uint8), m) and not torch.equal(m, mask)
    x, m = augment_with_mask(image, mask, ("crop", "contrast"))
    assert m.dtype == torch.uint8 and set(m.unique().tolist()) <= {0, 1, 2, 3}
    x, m = augment_with_mask(image, mask, ("crop",))
    agree = ((x[:, 0] * 3).round().to(torch.uint8) == m).float().mean()
    assert agree > 0.8  # bilinear image against nearest mask: equal away from the edges between classes
    _, m = augment_with_mask(image, mask, ("contrast", "gamma", "blur"))
    assert torch.equal(m, mask)  # colour ops leave the mask alone


def _copy(src: Path, dst: Path, n: int = 6) -> Path:
    for sub in ("images", "masks"):
        (dst / sub).mkdir(parents=True)
        for p in sorted((src / sub).glob("*.png"))[:n]:
            shutil.copy(p, dst / sub / p.name)
    shutil.copy(src / "classes.txt", dst / "classes.txt")
    return dst


def _bad_mask_size(d: Path):
    p = next((d / "masks").glob("*.png"))
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(p)


def _bad_mask_value(d: Path):
    p = next((d / "masks").glob("*.png"))
    a = _read(p)
    a[0, 0] = 7
    Image.fromarray(a).save(p)


def _no_mask(d: Path):
    next((d / "masks").glob("*.png")).unlink()


def _no_images(d: Path):
    for p in (d / "images").glob("*.png"):
        p.unlink()


@pytest.mark.parametrize("spoil, message", [
    (_bad_mask_size, "is 24x20 but its image"),
    (_bad_mask_value, "has the value 7, not a class id"),
    (_no_mask, "has no mask"),
    (_no_images, "no images found in"),
])
def test_bad_data_fails_in_one_line_and_leaves_nothing(cli, shapes, tmp_path, spoil, message):
    data = _copy(shapes[0], tmp_path / "data")
    spoil(data)
    out = tmp_path / "run"
    r = cli("vision", "segment", "train", data, "--out", out, *FAST)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_binary_masks_and_ignore_index(cli, shapes, tmp_path):
    data = _copy(shapes[0], tmp_path / "data", n=8)
    (data / "classes.txt").unlink()
    for p in (data / "masks").glob("*.png"):
        a = _read(p)
        a = np.where(a > 0, 255, 0).astype(np.uint8)
        a[:2] = 200  # a void border
        Image.fromarray(a).save(p)
    r = cli("vision", "segment", "train", data, "--out", tmp_path / "run", *FAST, "--epochs", "1",
            "--ignore-index", "200", "--loss", "ce+dice", "--class-weights", "auto")
    assert r.code == 0, r.stderr
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["classes"] == ["0", "1"] and ckpt["preprocess"]["ignore_index"] == 200
    r = cli("vision", "segment", "eval", tmp_path / "run", data, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert np.array(m["confusion_matrix"]).sum() == 8 * 30 * 32  # the void rows count for nothing


@pytest.mark.parametrize("loss", ["dice", "focal"])
def test_losses_train(cli, shapes, tmp_path, loss):
    r = cli("vision", "segment", "train", shapes[0], "--out", tmp_path / "run", *FAST, "--epochs", "1",
            "--loss", loss, "--format", "json")
    assert r.code == 0, r.stderr
    assert np.isfinite(json.loads(r.stdout)["train_loss"])


@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large",
                                  "lraspp_mobilenet_v3_large"])
def test_torchvision_segmenters_train_and_predict(cli, shapes, tmp_path, name):
    data = _copy(shapes[0], tmp_path / "data", n=4)
    r = cli("vision", "segment", "train", data, "--out", tmp_path / "run", "--model", name, "--epochs", "1",
            "--batch-size", "2", "--val-split", "0", "--augment", "", "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    r = cli("vision", "segment", "predict", tmp_path / "run", data, "--out", tmp_path / "p", "--format", "jsonl")
    assert r.code == 0, r.stderr
    assert _read(json.loads(r.stdout.splitlines()[0])["mask"]).shape == (32, 32)


def test_unet_options_are_refused_by_models_without_them(cli, shapes, tmp_path):
    r = cli("vision", "segment", "train", shapes[0], "--model", "unet_tiny", "--width", "32", "--out", tmp_path / "r")
    assert r.code == 1 and "--width does not apply to --model unet_tiny" in r.stderr


def test_export_onnx_matches_pytorch(cli, seg_trained, tmp_path):
    import onnxruntime as ort

    from dltool.vision.segment import load

    r = cli("vision", "segment", "export", seg_trained, "-o", tmp_path / "m.onnx", "--device", "cpu")
    assert r.code == 0, r.stderr
    spec = json.loads((tmp_path / "m.onnx.json").read_text())
    assert spec["output"]["shape"] == ["N", 4, 32, 32]
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    lm = load(seg_trained, torch.device("cpu"))
    with torch.inference_mode():
        want = lm.model((torch.from_numpy(x) - lm.task.mean) / lm.task.std).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_predict_shards_concatenate_to_the_whole(cli, shapes, seg_trained, tmp_path):
    from tests.conftest import assert_shards_concatenate

    lines = assert_shards_concatenate(cli, "vision", "segment", "predict", seg_trained, shapes[1], "--out", tmp_path)
    assert all(Path(json.loads(line)["mask"]).exists() for line in lines)
