"""vision detect --model maskrcnn through the CLI on tiny shapes sets (COCO json with polygons): it trains,
predicts mask PNGs and RLE, and eval's box and mask mAP equal pycocotools' COCOeval (bbox, segm) on the
same predictions; RLE input reads as the polygons do; masks follow the geometric augmentations; a bad
polygon fails in one line and leaves nothing."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.vision.seg_data import write_shapes

TINY = ["--model", "maskrcnn_tiny", "--batch-size", "4", "--lr", "0.01", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def mask_shapes(tmp_path_factory):
    base = tmp_path_factory.mktemp("maskshapes")
    return write_shapes(base / "train", 8, seed=0, size=64), write_shapes(base / "test", 4, seed=1, size=64)


@pytest.fixture(scope="module")
def mask_trained(mask_shapes, tmp_path_factory):
    from dltool.cli import main

    out = tmp_path_factory.mktemp("maskrun") / "r"
    data = mask_shapes[0]
    try:  # the default augmentation (flip, scale, colour) moves the masks with the images
        main(["vision", "detect", "train", str(data), "--coco", str(data / "annotations.json"), "--out", str(out),
              "--epochs", "3", *TINY])
    except SystemExit as e:
        assert e.code == 0
    return out


def _cocoeval(truth: dict, results: list, iou_type: str) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = truth
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[1], ev.stats[0]  # mAP@0.5, mAP@0.5:0.95


def test_trains_predicts_masks_and_eval_equals_cocoeval_bbox_and_segm(cli, mask_shapes, mask_trained, tmp_path):
    rows = [json.loads(line) for line in (mask_trained / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and np.isfinite(rows[-1]["train_loss"])
    ckpt = torch.load(mask_trained / "model.pt", weights_only=True)
    assert ckpt["arch"] == "maskrcnn_tiny" and ckpt["classes"] == ["circle", "square", "triangle"]
    assert "flip,scale,colour" in (mask_trained / "config.toml").read_text()  # no mosaic: it cannot carry masks
    test = mask_shapes[1]
    r = cli("vision", "detect", "eval", mask_trained, test, "--coco", test / "annotations.json", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert {"map50", "map", "mask_map50", "mask_map", "mask_per_class"} <= set(m)
    r = cli("vision", "detect", "predict", mask_trained, test, "--conf", "0.001", "--coco-json", tmp_path / "res.json",
            "--out", tmp_path / "masks", "--save-vis", tmp_path / "vis", "--batch-size", "32", "--format", "jsonl")
    assert r.code == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 4 and all(b["mask"] for row in lines for b in row["boxes"])
    first = lines[0]["boxes"][0]
    png = np.asarray(Image.open(first["mask"]))
    assert png.shape == (64, 64) and set(np.unique(png)) <= {0, 255} and "segmentation" not in first
    assert Image.open(tmp_path / "vis" / "0000.png").size == (64, 64)
    results = json.loads((tmp_path / "res.json").read_text())
    assert results and all(set(r["segmentation"]) == {"size", "counts"} for r in results)
    truth = json.loads((test / "annotations.json").read_text())
    for im in truth["images"]:
        im["id"] = Path(im["file_name"]).stem  # predict's image ids are the stems
    for a in truth["annotations"]:
        a["image_id"] = f"{a['image_id']:04d}"
    _same_as_cocoeval(m, truth, results)
    # a model of a few steps scores near 0 on the shapes; its own confident detections as the truth (RLE
    # segmentations, a truth it partly finds) give figures well above 0 to compare
    top = [x for im in truth["images"] for x in sorted((x for x in results if x["image_id"] == im["id"]),
                                                      key=lambda x: -x["score"])[:3]]  # three an image
    own = {"images": truth["images"], "categories": truth["categories"], "annotations": [
        {**r, "id": k + 1, "image_id": int(r["image_id"]), "iscrowd": 0, "area": float(r["bbox"][2] * r["bbox"][3])}
        for k, r in enumerate(top)]}
    for im in own["images"]:
        im["id"] = int(im["id"])
    (test / "own.json").write_text(json.dumps(own))
    r = cli("vision", "detect", "eval", mask_trained, test, "--coco", test / "own.json", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["mask_map50"] > 0.3 and m["mask_map"] > 0.1, m
    for x in results:
        x["image_id"] = int(x["image_id"])
    _same_as_cocoeval(m, own, results)


def _same_as_cocoeval(m: dict, truth: dict, results: list) -> None:
    box50, box = _cocoeval(truth, [{k: v for k, v in r.items() if k != "segmentation"} for r in results], "bbox")
    seg50, seg = _cocoeval(truth, results, "segm")
    assert m["map50"] == pytest.approx(box50, abs=1e-6) and m["map"] == pytest.approx(box, abs=1e-6)
    assert m["mask_map50"] == pytest.approx(seg50, abs=1e-6) and m["mask_map"] == pytest.approx(seg, abs=1e-6)


def test_mask_map_matches_cocoeval_segm_on_random_masks():
    """Overlapping instances, ties, false positives, a class without truth: the same rules by mask IoU."""
    from pycocotools import mask as coco_mask

    from dltool.vision import detmetrics

    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    truth = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(classes)]}
    results, matches = [], detmetrics.Matches.empty(3)

    def blobs(n):  # rectangles and discs of random size, (n, 40, 40) bool
        yy, xx = np.mgrid[:40, :40]
        out = np.zeros((n, 40, 40), bool)
        for i in range(n):
            cx, cy, r = rng.uniform(5, 35), rng.uniform(5, 35), rng.uniform(3, 12)
            out[i] = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r if rng.random() < 0.5 else \
                (abs(xx - cx) < r) & (abs(yy - cy) < r * 0.7)
        return out

    def rle(m):
        r = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
        return {"size": r["size"], "counts": r["counts"].decode("ascii")}

    for i in range(20):
        truth["images"].append({"id": i, "width": 40, "height": 40})
        g = int(rng.integers(0, 5))
        gm, gl = blobs(g), rng.integers(0, 2, g)  # class c never occurs in the truth
        d = int(rng.integers(0, 8))
        src = rng.integers(0, max(g, 1), d)
        dm = blobs(d)
        for j in range(d):  # half the detections are a true mask, shifted by a pixel or two
            if g and rng.random() < 0.5:
                dm[j] = np.roll(gm[src[j]], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        dl = np.where(rng.random(d) < 0.8, gl[src] if g else 0, rng.integers(0, 3, d))
        ds = np.round(rng.uniform(0, 1, d), 2)  # ties
        gb = np.array([[*np.argwhere(m).min(0)[::-1], *(np.argwhere(m).max(0)[::-1] + 1)] for m in gm]).reshape(-1, 4)
        for m, c, b in zip(gm, gl, gb):
            truth["annotations"].append({"id": len(truth["annotations"]) + 1, "image_id": i, "category_id": int(c) + 1,
                                         "segmentation": rle(m), "area": float(m.sum()), "bbox": [*map(float, b[:2]),
                                         *map(float, b[2:] - b[:2])], "iscrowd": 0})
        results += [{"image_id": i, "category_id": int(c) + 1, "segmentation": rle(m), "score": float(s)}
                    for m, s, c in zip(dm, ds, dl)]
        matches = matches + detmetrics.match(np.zeros((d, 4)), ds, dl, gb, gl, 3, masks=dm, gt_masks=gm)
    s = detmetrics.summarise(matches, classes, conf=0.5)
    want = _cocoeval(truth, results, "segm")
    assert want[0] > 0.1  # far from 0 and 1: matches and misses both count
    assert s["map50"] == pytest.approx(want[0], abs=1e-9) and s["map"] == pytest.approx(want[1], abs=1e-9)


def test_rle_segmentations_read_as_the_polygons(cli, mask_shapes, mask_trained, tmp_path):
    from pycocotools import mask as coco_mask

    test = mask_shapes[1]
    doc = json.loads((test / "annotations.json").read_text())
    for k, a in enumerate(doc["annotations"]):
        rle = coco_mask.merge(coco_mask.frPyObjects(a["segmentation"], 64, 64))
        if k % 2:  # compressed, as COCO's own files have it
            a["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        else:  # uncompressed (counts a list of run lengths)
            m = coco_mask.decode(rle).ravel(order="F").astype(np.int64)
            runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, m, -1]) != 0))
            a["segmentation"] = {"size": [64, 64], "counts": ([0] if m[0] else []) + runs.tolist()}
    (test / "rle.json").write_text(json.dumps(doc))
    got = [json.loads(cli("vision", "detect", "eval", mask_trained, test, "--coco", test / f, "--format",
                          "json").stdout) for f in ("annotations.json", "rle.json")]
    assert got[0]["mask_map"] == got[1]["mask_map"] and got[0]["mask_map50"] == got[1]["mask_map50"]


def test_instance_masks_follow_the_pixels():
    """flip, rot90 and scale move each instance mask exactly as the image: white pixels stay white in it."""
    from dltool.vision.augment import apply, parse_ops

    torch.manual_seed(0)
    x = torch.zeros(8, 3, 64, 64)
    x[:, :, 4:20, 6:30] = 1.0
    x[:, :, 40:60, 36:52] = 1.0
    masks = torch.zeros(8, 2, 64, 64, dtype=torch.uint8)
    masks[:, 0, 4:20, 6:30] = 1
    masks[:, 1, 40:60, 36:52] = 1
    boxes = torch.tensor([[[0, 6, 4, 30, 20], [1, 36, 40, 52, 60.]]] * 8)
    assert parse_ops("flip,rot90,scale,colour", labels="instances")
    with pytest.raises(Exception, match="mosaic cannot keep instance masks"):
        parse_ops("mosaic", labels="instances")
    for op in ("flip", "rot90", "scale"):
        y, m, b = apply(x, (op,), mask=masks, boxes=boxes)
        assert m.shape == masks.shape and not torch.equal(m, masks)
        white = y[:, 0] > 0.75
        inside = m.bool().any(1)
        assert (white == inside).float().mean() > 0.99, op
        for img in range(8):  # each kept box hugs its mask
            for slot in range(2):
                if b[img, slot, 0] >= 0 and m[img, slot].any():
                    ys, xs = m[img, slot].nonzero(as_tuple=True)
                    got = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
                    assert (got - b[img, slot, 1:]).abs().max() <= 1.5, (op, got, b[img, slot])


def _spoil_polygon(data: Path) -> Path:
    doc = json.loads((data / "annotations.json").read_text())
    doc["annotations"][3]["segmentation"] = [[1.0, 2.0, 10.0, 12.0]]
    (data / "bad.json").write_text(json.dumps(doc))
    return data / "bad.json"


def test_a_polygon_of_two_points_fails_naming_the_annotation(cli, mask_shapes, tmp_path):
    bad = _spoil_polygon(mask_shapes[0])
    out = tmp_path / "run"
    r = cli("vision", "detect", "train", mask_shapes[0], "--coco", bad, "--out", out, "--epochs", "1", *TINY)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "annotation 4: polygon 0 has 2 points; a polygon needs at least 3" in lines[0] and not out.exists()


def test_boxes_without_masks_are_refused_by_maskrcnn(cli, mask_shapes, tmp_path):
    out = tmp_path / "run"
    r = cli("vision", "detect", "train", mask_shapes[0], "--out", out, "--epochs", "1", *TINY)  # YOLO labels only
    assert r.code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "--model maskrcnn_tiny learns instance masks" in r.stderr and "--coco" in r.stderr and not out.exists()
    r = cli("vision", "detect", "train", mask_shapes[0], "--augment", "flip,mosaic", "--out", out, *TINY)
    assert r.code == 1 and "--augment mosaic cannot keep instance masks" in r.stderr and not out.exists()


def test_instance_pngs_read_as_voc_object_and_class_pairs(mask_shapes, tmp_path):
    """The polygons drawn as an instance PNG beside the class masks: each instance gets its shape's class
    and a box hugging what is left of it in view (later shapes cover earlier ones)."""
    import shutil

    from dltool.vision import detdata
    from tests.vision.seg_data import write_instances

    data = write_instances(Path(shutil.copytree(mask_shapes[1], tmp_path / "d")))
    coco = detdata.scan(data, coco=data / "annotations.json")
    inst = detdata.scan(data)
    assert inst.classes == coco.classes == ["circle", "square", "triangle"] and inst.labels == data / "instances"
    for a, b in zip(coco.samples, inst.samples):
        masks = b.masks()
        assert masks.shape == (len(b.boxes), 64, 64) and len(b.boxes) <= len(a.boxes)
        for box, lab, value in zip(b.boxes, b.labels, b.instances[1]):
            assert lab == a.labels[value - 1]  # instance k is annotation k of its image
            assert (box[:2] >= a.boxes[value - 1][:2] - 1).all() and (box[2:] <= a.boxes[value - 1][2:] + 1).all()
