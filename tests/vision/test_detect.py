"""vision detect through the CLI on tiny shapes sets: yolo_tiny learns; eval's mAP equals pycocotools'
COCOeval on the same predictions; YOLO, VOC and COCO folders read alike; predict writes JSON Lines, YOLO
txt, COCO json and drawings in the original image's pixels; boxes follow augmentation; bad labels fail
in one line; every detector trains; ONNX exports (with and without NMS) match onnxruntime."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from tests.vision.seg_data import write_shapes

FAST = ["--model", "yolo_tiny", "--epochs", "30", "--batch-size", "8", "--lr", "0.004", "--device", "cpu", "--quiet"]
CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="session")
def det_shapes(tmp_path_factory):
    base = tmp_path_factory.mktemp("detshapes")
    return write_shapes(base / "train", 64, seed=0, size=64), write_shapes(base / "test", 16, seed=1, size=64)


@pytest.fixture(scope="session")
def det_trained(det_shapes, tmp_path_factory):
    from dltool.cli import main

    out = tmp_path_factory.mktemp("detrun") / "r"
    try:
        # no augmentation or hold-out: 240 steps fit the 64 images (the learning bar on held-out images,
        # which takes minutes, is the README's, measured with benchmarks-style runs of the defaults)
        main(["vision", "detect", "train", str(det_shapes[0]), "--out", str(out), *FAST, "--augment", "",
              "--val-split", "0"])
    except SystemExit as e:
        assert e.code == 0
    return out


def _coco_truth(folder: Path) -> dict:
    """The YOLO labels as a COCO ground-truth file, image ids = stems (as predict --coco-json writes them)."""
    images, anns = [], []
    for p in sorted((folder / "images").glob("*.png")):
        w, h = Image.open(p).size
        images.append({"id": p.stem, "file_name": p.name, "width": w, "height": h})
        for line in (folder / "labels" / f"{p.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, cx, cy, bw, bh = (float(v) for v in line.split())
                box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
                anns.append({"id": len(anns) + 1, "image_id": p.stem, "category_id": int(c) + 1, "bbox": box,
                             "area": box[2] * box[3], "iscrowd": 0})
    return {"images": images, "annotations": anns, "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}


def _cocoeval(truth: dict, results: list) -> tuple[float, float]:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = truth
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[1], ev.stats[0]  # mAP@0.5, mAP@0.5:0.95


def test_train_learns_and_eval_equals_cocoeval_on_the_predictions(cli, det_shapes, det_trained, tmp_path):
    ckpt = torch.load(det_trained / "model.pt", weights_only=True)
    assert ckpt["task"] == "vision-detect" and ckpt["classes"] == CLASSES  # data.yaml, not the masks' classes.txt
    assert ckpt["preprocess"]["img_size"] == 64
    assert ckpt["arch_kwargs"]["strides"] == "4,8,16"  # a tenth of the boxes under 32 px: P2-P4
    r = cli("vision", "detect", "eval", det_trained, det_shapes[0], "--out", tmp_path / "ev", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["map50"] > 0.4 and m["map"] < m["map50"], m  # it learned the images it saw (untrained: ~0.003)
    assert set(m["per_class"]) == set(CLASSES) and 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert (tmp_path / "ev" / "pr_curve.png").stat().st_size > 0 and (tmp_path / "ev" / "confusion.png").exists()
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (4, 4) and cm[:3].sum() == m["boxes"]  # every true box once: found or missed (background)
    r = cli("vision", "detect", "predict", det_trained, det_shapes[0], "--conf", "0.001", "--coco-json",
            tmp_path / "res.json", "--format", "jsonl", "-o", tmp_path / "preds.jsonl")
    assert r.code == 0, r.stderr
    assert len((tmp_path / "preds.jsonl").read_text().splitlines()) == 64
    ours = _cocoeval(_coco_truth(det_shapes[0]), json.loads((tmp_path / "res.json").read_text()))
    assert m["map50"] == pytest.approx(ours[0], abs=1e-3) and m["map"] == pytest.approx(ours[1], abs=1e-3)


def test_map_matches_cocoeval_on_random_detections():
    """Crowded and empty images, ties, false positives, a class without truth, more than 100 detections."""
    from dltool.vision import detmetrics

    rng = np.random.default_rng(0)
    truth = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    results, matches = [], detmetrics.Matches.empty(3)
    for i in range(30):
        truth["images"].append({"id": i, "width": 100, "height": 100})
        g = rng.integers(0, 8)
        xy = rng.uniform(0, 70, (g, 2))
        gt = np.concatenate([xy, xy + rng.uniform(5, 30, (g, 2))], 1)
        gl = rng.integers(0, 2, g)  # class 2 never occurs in the truth
        d = 130 if i == 0 else rng.integers(0, 12)
        src = rng.integers(0, max(g, 1), d)
        db = gt[src] + rng.normal(0, 3, (d, 4)) if g else rng.uniform(0, 80, (d, 4))  # near a true box, or anywhere
        db = np.concatenate([db[:, :2], np.maximum(db[:, 2:], db[:, :2] + 1)], 1)
        ds = np.round(rng.uniform(0, 1, d), 2)  # ties
        dl = np.where(rng.random(d) < 0.8, gl[src] if g else 0, rng.integers(0, 3, d))  # some of the wrong class
        for b, c in zip(gt, gl):
            truth["annotations"].append({"id": len(truth["annotations"]) + 1, "image_id": i, "category_id": int(c) + 1,
                                         "bbox": [*b[:2], *(b[2:] - b[:2])], "area": float(np.prod(b[2:] - b[:2])),
                                         "iscrowd": 0})
        results += [{"image_id": i, "category_id": int(c) + 1, "bbox": [*b[:2], *(b[2:] - b[:2])], "score": float(s)}
                    for b, s, c in zip(db, ds, dl)]
        matches = matches + detmetrics.match(db, ds, dl, gt, gl, 3)
    s = detmetrics.summarise(matches, CLASSES, conf=0.5)
    want = _cocoeval(truth, results)
    assert s["map50"] == pytest.approx(want[0], abs=1e-6) and s["map"] == pytest.approx(want[1], abs=1e-6)
    assert s["per_class"]["triangle"]["ap50"] is None
    again = detmetrics.Matches.from_lists(matches.to_lists())  # what crosses between ranks
    assert detmetrics.summarise(again, CLASSES, conf=0.5) == s


def test_predict_lines_txt_vis_and_original_pixels(cli, det_shapes, det_trained, tmp_path):
    # a training image on a non-square canvas, and the same canvas at twice the size: both letterbox to the
    # same network input, so the big one's boxes, back in its own pixels, are the small one's doubled
    src = sorted((det_shapes[0] / "images").glob("*.png"))[0]
    for name, scale in (("small", 1), ("big", 2)):
        canvas = Image.new("RGB", (64 * scale, 100 * scale), (114, 114, 114))
        canvas.paste(Image.open(src).convert("RGB").resize((64 * scale, 64 * scale), Image.BILINEAR), (0, 0))
        canvas.save(tmp_path / f"{name}.png")
    r = cli("vision", "detect", "predict", det_trained, tmp_path / "small.png", "--format", "jsonl")
    small = json.loads(r.stdout)
    r = cli("vision", "detect", "predict", det_trained, "--format", "jsonl", "--save-txt", tmp_path / "txt",
            "--save-vis", tmp_path / "vis", input=f"{tmp_path / 'big.png'}\n{tmp_path / 'small.png'}\n")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(row["width"], row["height"]) for row in rows] == [(128, 200), (64, 100)] and rows[1] == small
    assert small["boxes"] and all(set(b) == {"label", "score", "box"} for b in small["boxes"])
    top_small = max(small["boxes"], key=lambda b: b["score"])
    near = [b for b in rows[0]["boxes"] if b["label"] == top_small["label"]]
    doubled = torch.tensor([top_small["box"]]) * 2
    assert near and box_iou(torch.tensor([b["box"] for b in near]), doubled).max() >= 0.9
    lines = (tmp_path / "txt" / "big.txt").read_text().splitlines()
    assert len(lines) == len(rows[0]["boxes"]) and all(len(line.split()) == 6 for line in lines)
    cls, cx, cy, w, h, score = lines[0].split()
    x1, y1, x2, y2 = rows[0]["boxes"][0]["box"]
    assert float(cx) == pytest.approx((x1 + x2) / 2 / 128, abs=1e-4) and float(h) == pytest.approx((y2 - y1) / 200, abs=1e-4)
    assert Image.open(tmp_path / "vis" / "big.png").size == (128, 200)


def _copy(src: Path, dst: Path, n: int = 8) -> Path:
    for sub, ext in (("images", "png"), ("labels", "txt")):
        (dst / sub).mkdir(parents=True)
        for p in sorted((src / sub).glob(f"*.{ext}"))[:n]:
            shutil.copy(p, dst / sub / p.name)
    shutil.copy(src / "data.yaml", dst / "data.yaml")
    return dst


def _as_voc(yolo: Path, dst: Path, rename: dict | None = None) -> Path:
    (dst / "JPEGImages").mkdir(parents=True)
    (dst / "Annotations").mkdir()
    for p in sorted((yolo / "images").glob("*.png")):
        shutil.copy(p, dst / "JPEGImages" / p.name)
        objs = []
        for line in (yolo / "labels" / f"{p.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, cx, cy, w, h = (float(v) for v in line.split())
                name = (rename or {}).get(CLASSES[int(c)], CLASSES[int(c)])
                objs.append(f"<object><name>{name}</name><bndbox><xmin>{(cx - w / 2) * 64}</xmin><ymin>{(cy - h / 2) * 64}"
                            f"</ymin><xmax>{(cx + w / 2) * 64}</xmax><ymax>{(cy + h / 2) * 64}</ymax></bndbox></object>")
        (dst / "Annotations" / f"{p.stem}.xml").write_text(
            f"<annotation><filename>{p.name}</filename><size><width>64</width><height>64</height></size>"
            + "".join(objs) + "</annotation>")
    return dst


def test_voc_and_coco_folders_read_as_the_yolo_one(cli, det_shapes, det_trained, tmp_path):
    yolo = json.loads(cli("vision", "detect", "eval", det_trained, det_shapes[1], "--format", "json").stdout)
    voc = _as_voc(det_shapes[1], tmp_path / "voc")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "half.txt").write_text("0000\n0001\n")
    r = cli("vision", "detect", "eval", det_trained, voc, "--classes", ",".join(CLASSES), "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["map50"] == pytest.approx(yolo["map50"], abs=1e-6)
    r = cli("vision", "detect", "eval", det_trained, voc, "--classes", ",".join(CLASSES), "--split", "half",
            "--format", "json")
    assert r.code == 0 and json.loads(r.stdout)["n"] == 2, r.stderr
    r = cli("vision", "detect", "eval", det_trained, det_shapes[1], "--coco", det_shapes[1] / "annotations.json",
            "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["map50"] == pytest.approx(yolo["map50"], abs=0.02)  # COCO boxes rounded to 0.01 px


def _first_label(d: Path) -> Path:
    return sorted((d / "labels").glob("*.txt"))[0]


def _class_out_of_range(d: Path):
    _first_label(d).write_text("7 0.5 0.5 0.2 0.2\n")


def _box_outside(d: Path):
    _first_label(d).write_text("0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.3 0.2\n")


def _malformed(d: Path):
    _first_label(d).write_text("0 0.5 0.5 0.2 0.2\n1 0.5 zero 0.2\n")


def _no_images(d: Path):
    for p in (d / "images").glob("*.png"):
        p.unlink()


def _voc_unknown_class(d: Path):
    voc = _as_voc(d, d.parent / "voc", rename={"square": "box"})
    shutil.rmtree(d)
    shutil.move(voc, d)


@pytest.mark.parametrize("spoil, message", [
    (_class_out_of_range, "line 1: class id 7 is out of range"),
    (_box_outside, "line 2: the box 0.95 0.5 0.3 0.2 lies outside the image"),
    (_malformed, "line 2: '1 0.5 zero 0.2' is not `cls cx cy w h`"),
    (_no_images, "no images found in"),
    (_voc_unknown_class, "names the class 'box', not in the class list"),
])
def test_bad_labels_fail_in_one_line_and_leave_nothing(cli, det_shapes, tmp_path, spoil, message):
    data = _copy(det_shapes[0], tmp_path / "data")
    spoil(data)
    out = tmp_path / "run"
    extra = ["--classes", ",".join(CLASSES)] if spoil is _voc_unknown_class else []
    r = cli("vision", "detect", "train", data, "--out", out, *FAST, *extra)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_skip_bad_skips_a_malformed_line_with_a_warning(cli, det_shapes, det_trained, tmp_path):
    data = _copy(det_shapes[1], tmp_path / "data")
    _malformed(data)
    r = cli("vision", "detect", "eval", det_trained, data, "--skip-bad", "--format", "json")
    assert r.code == 0, r.stderr
    assert "skipping the label at" in r.stderr and "line 2" in r.stderr
    m = json.loads(r.stdout)
    n_boxes = sum(len(p.read_text().split("\n")) - 1 for p in (data / "labels").glob("*.txt"))
    assert m["boxes"] == n_boxes - 1  # the one bad line left out, its neighbour kept


def _boxes_image(boxes, size=64) -> torch.Tensor:
    x = torch.zeros(1, 3, size, size)
    for x1, y1, x2, y2 in boxes:
        x[0, :, y1:y2, x1:x2] = 1.0
    return x


def _geometric_box_ops():
    from dltool.vision.augment import AUGMENTS, ops_for

    return [op for op in ops_for("boxes") if AUGMENTS.get(op).meta["geometric"]]


@pytest.mark.parametrize("op", _geometric_box_ops())
def test_boxes_follow_the_pixels(op):
    """White rectangles on black, the boxes exactly them: after the op, each kept box is still white
    inside and hugs its rectangle (every op of the one registry that says it moves boxes)."""
    from dltool.vision.augment import PAD_VALUE, apply

    torch.manual_seed(0)
    boxes = [(4, 6, 20, 30), (36, 40, 60, 52)]
    x = _boxes_image(boxes).repeat(8, 1, 1, 1)
    t = torch.tensor([[[0, *b] for b in boxes]] * 8, dtype=torch.float)
    y, _, moved = apply(x, (op,), boxes=t)
    assert moved.shape[0] == 8 and y.shape == x.shape and not torch.equal(y, x)
    kept = 0
    for img, rows in zip(y, moved):
        white = (img[0] > 0.75)  # grey padding (114/255) and black are both below
        for c, x1, y1, x2, y2 in rows.tolist():
            if c < 0:
                continue
            kept += 1
            inner = white[round(y1) + 1:round(y2) - 1, round(x1) + 1:round(x2) - 1]
            assert inner.float().mean() > 0.9
            ys, xs = white.nonzero(as_tuple=True)
            inside = (xs >= x1 - 1.5) & (xs <= x2 + 1.5) & (ys >= y1 - 1.5) & (ys <= y2 + 1.5)
            hugs = white[max(0, round(y1)):round(y2), max(0, round(x1)):round(x2)].sum()
            assert inside.sum() >= 0.9 * hugs
    assert kept >= 8
    assert PAD_VALUE == 114


def test_yolo_backbones_and_scales_build():
    from dltool.vision.models import DETECTORS
    from dltool.vision.models.det_yolo import BACKBONES

    for kwargs in ({"backbone": "resnet18"}, {"backbone": "mobilenet_v3_small"}, {"scale": "s"}):
        model = DETECTORS.create("yolo", num_classes=2, **kwargs).eval()
        assert model.raw(torch.rand(1, 3, 64, 64)).shape == (1, 64 + 16 + 4, 7)
    for backbone in BACKBONES:  # P2-P4 and P2-P5: a level per stride, nothing left unused past the coarsest
        for strides, cells in (("4,8,16", 256 + 64 + 16), ("4,8,16,32", 256 + 64 + 16 + 4)):
            model = DETECTORS.create("yolo", num_classes=2, backbone=backbone, strides=strides)
            assert model.raw(torch.rand(2, 3, 64, 64)).shape == (2, cells, 7)
            model(torch.rand(2, 3, 64, 64), torch.tensor([[[0, 2, 2, 9, 9.]], [[1, 30, 30, 60, 50.]]])).backward()
            assert not [n for n, p in model.named_parameters() if p.grad is None], (backbone, strides)


def test_the_pyramid_follows_the_box_sizes():
    from dltool.vision.detect import _strides

    def boxes(side):  # (images, boxes, [cls x1 y1 x2 y2]) with one padding row
        t = np.full((10, 2, 5), -1.0, dtype=np.float32)
        t[:, 0] = [0, 10, 10, 10 + side, 10 + side]
        return t

    assert _strides(boxes(20)) == "4,8,16"
    assert _strides(boxes(200)) == "8,16,32"
    mixed = boxes(200)
    mixed[0, 0, 3:] = 20  # one box in ten small: the tenth percentile is still large
    assert _strides(mixed) == "8,16,32"


@pytest.mark.parametrize("spec", ["4,4", "8,4", "2,4", "8", "8,x"])
def test_bad_strides_are_refused_before_training(cli, det_shapes, tmp_path, spec):
    r = cli("vision", "detect", "train", det_shapes[0], "--strides", spec, "--out", tmp_path / "r")
    assert r.code == 1 and r.stderr.count("\n") == 1 and "--strides" in r.stderr and not (tmp_path / "r").exists()


def test_fasterrcnn_trains_and_predicts(cli, det_shapes, tmp_path):
    data = _copy(det_shapes[0], tmp_path / "data", n=6)
    r = cli("vision", "detect", "train", data, "--out", tmp_path / "run", "--model", "fasterrcnn_tiny", "--epochs",
            "1", "--batch-size", "2", "--val-split", "0", "--device", "cpu", "--quiet", "--format", "json")
    assert r.code == 0, r.stderr
    assert np.isfinite(json.loads(r.stdout)["train_loss"])
    r = cli("vision", "detect", "predict", tmp_path / "run", data, "--conf", "0", "--format", "jsonl")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 6 and all(row["width"] == 64 for row in rows)
    r = cli("vision", "detect", "export", tmp_path / "run", "-o", tmp_path / "m.onnx")
    assert r.code == 1 and "export covers the yolo models" in r.stderr and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("model, backbone", [("fasterrcnn_tiny", None), ("yolo", "resnet18")])
def test_pretrained_takes_torchvision_files_and_a_frozen_backbone_keeps_them(cli, det_shapes, tmp_path, model, backbone):
    """--pretrained reads torchvision's own state_dicts: a Faster R-CNN's (here with another class count, as
    its COCO weights have: the box predictor stays fresh) and, for yolo --backbone, the classification
    network's; --freeze-backbone then trains the rest and leaves every loaded backbone tensor as it was."""
    import torchvision

    from dltool.vision.models import DETECTORS

    torch.manual_seed(1)
    if model == "fasterrcnn_tiny":
        theirs = DETECTORS.create(model, num_classes=7).net.state_dict()  # torchvision's own names
        ours = {"net." + k: v for k, v in theirs.items() if k.startswith("backbone.")}
    else:
        theirs = torchvision.models.resnet18(weights=None).state_dict()
        ours = {"backbone.layers.0.0.weight": theirs["conv1.weight"], "backbone.layers.2.1.bn2.running_var":
                theirs["layer4.1.bn2.running_var"], "backbone.layers.1.0.conv1.weight": theirs["layer3.0.conv1.weight"]}
    torch.save(theirs, tmp_path / "theirs.pth")
    data = _copy(det_shapes[0], tmp_path / "data", n=4)
    # P3-P5, where ours are the names above (the shapes' small boxes would choose P2-P4)
    extra = ["--backbone", backbone, "--img-size", "64", "--strides", "8,16,32"] if backbone else []
    r = cli("vision", "detect", "train", data, "--out", tmp_path / "run", "--model", model, *extra, "--pretrained",
            tmp_path / "theirs.pth", "--freeze-backbone", "--epochs", "1", "--batch-size", "2", "--val-split", "0",
            "--device", "cpu")
    assert r.code == 0, r.stderr
    assert "pretrained: loaded" in r.stderr
    got = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert ours and all(torch.equal(got[k], v) for k, v in ours.items())
    if model == "fasterrcnn_tiny":  # the 7-class predictor was left out: ours has our 3 classes + background
        assert got["net.roi_heads.box_predictor.cls_score.weight"].shape[0] == 4


@pytest.mark.parametrize("unlabel", ["empty files", "no labels folder"])
def test_a_set_without_a_single_box_is_refused_naming_the_labels_folder(cli, det_shapes, tmp_path, unlabel):
    data = _copy(det_shapes[0], tmp_path / "data", n=6)
    if unlabel == "no labels folder":
        shutil.rmtree(data / "labels")
    else:
        for p in (data / "labels").glob("*.txt"):
            p.write_text("")
    out = tmp_path / "run"
    r = cli("vision", "detect", "train", data, "--out", out, *FAST)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: none of the 6 images has a box in "), r.stderr
    assert str(data / "labels") in lines[0] and not out.exists()


def test_background_images_beside_labelled_ones_train_and_are_counted(cli, det_shapes, tmp_path):
    data = _copy(det_shapes[0], tmp_path / "data", n=6)
    labels = sorted((data / "labels").glob("*.txt"))
    labels[0].unlink()
    labels[1].write_text("")
    n_boxes = sum(len(p.read_text().split()) // 5 for p in labels[2:])
    r = cli("vision", "detect", "train", data, "--out", tmp_path / "run", "--model", "yolo_tiny", "--epochs", "1",
            "--batch-size", "6", "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    assert f"data: 6 training images ({n_boxes} boxes, 2 background images), 0 validation" in r.stderr
    assert (tmp_path / "run" / "model.pt").exists()


def test_an_op_that_cannot_move_boxes_is_refused_before_training(cli, det_shapes, tmp_path):
    r = cli("vision", "detect", "train", det_shapes[0], "--augment", "flip,crop", "--out", tmp_path / "r")
    assert r.code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "--augment crop cannot keep detection boxes right" in r.stderr and "mosaic" in r.stderr
    assert not (tmp_path / "r").exists()


def test_yolo_options_are_refused_by_models_without_them(cli, det_shapes, tmp_path):
    r = cli("vision", "detect", "train", det_shapes[0], "--model", "yolo_tiny", "--scale", "m", "--out", tmp_path / "r")
    assert r.code == 1 and "--scale does not apply to --model yolo_tiny" in r.stderr and not (tmp_path / "r").exists()


def test_export_onnx_matches_pytorch_with_and_without_nms(cli, det_trained, tmp_path):
    import onnxruntime as ort

    from dltool.vision.detect import _WithNMS, load

    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    lm = load(det_trained, torch.device("cpu"))
    r = cli("vision", "detect", "export", det_trained, "-o", tmp_path / "m.onnx", "--device", "cpu")
    assert r.code == 0, r.stderr
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    boxes, scores = sess.run(None, {"input": x})
    with torch.inference_mode():
        want_boxes, want_scores = lm.model.scores((torch.from_numpy(x) - lm.task.mean) / lm.task.std)
    np.testing.assert_allclose(boxes, want_boxes.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(scores, want_scores.numpy(), rtol=1e-4, atol=1e-5)
    r = cli("vision", "detect", "export", det_trained, "-o", tmp_path / "n.onnx", "--nms", "--conf", "0.05")
    assert r.code == 0, r.stderr
    spec = json.loads((tmp_path / "n.onnx.json").read_text())
    assert spec["nms"] and spec["output"]["detections"]["columns"][0] == "image"
    sess = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    with torch.inference_mode():
        want = _WithNMS(lm, 0.05, lm.preprocess["iou"]).eval()(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and len(got) > 0
    order = lambda a: a[np.lexsort((-a[:, 5], a[:, 0]))]  # noqa: E731 (NMS output order may differ)
    np.testing.assert_allclose(order(got), order(want), rtol=1e-4, atol=1e-3)


def test_predict_shards_concatenate_to_the_whole(cli, det_shapes, det_trained):
    from tests.conftest import assert_shards_concatenate

    assert_shards_concatenate(cli, "vision", "detect", "predict", det_trained, det_shapes[1], shards=3)
