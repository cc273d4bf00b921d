"""Planned defaults of `vision segment train` (dltool.vision.segplan) and the patches it trains on: the plan
is printed in one line and saved in config.toml, the same data gives the same plan, a flag the user sets
wins; the rules give the recipes they name; patches over-sample the rarer class, the same ones again for
the same (seed, epoch); masks as real data ships them (JPEG, another size) are read and counted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image

from tests.vision.seg_data import write_shapes

FAST = ("--epochs", "1", "--augment", "", "--device", "cpu", "--format", "json")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("segplan") / "train", 8, seed=0)


def _train(cli, data, out, *args):
    r = cli("vision", "segment", "train", data, *FAST, "--out", out, *args)
    assert r.code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("plan")]
    assert len(lines) == 1, r.stderr
    return lines[0], tomllib.loads((out / "config.toml").read_text()), r.stderr


def test_plan_is_printed_saved_deterministic_and_used(cli, shapes, tmp_path):
    line, config, _ = _train(cli, shapes, tmp_path / "a")
    again, config_again, _ = _train(cli, shapes, tmp_path / "b")
    assert (line, config["plan"]) == (again, config_again["plan"])
    plan = config["plan"]
    assert plan["fingerprint"]["images"] == 8 and plan["fingerprint"]["side_median"] == 32
    # 32-px images: whole-image patches, the bottleneck at 4 px (depth 3 at least), the small width
    assert plan["values"] == {"depth": 3, "width": 16, "img_size": 32, "batch_size": 16, "resize": 0}
    assert 0 < plan["fingerprint"]["object_side"] < 1  # shapes smaller than the image: kept at their own size
    for name, value in plan["values"].items():
        assert config[name] == value and f"{name}={value}" in line
    assert line.endswith("set by you: epochs")
    ckpt = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert (ckpt["arch_kwargs"]["depth"], ckpt["arch_kwargs"]["width"], ckpt["preprocess"]["img_size"]) == (3, 16, 32)


def test_a_flag_the_user_sets_wins_over_the_plan(cli, shapes, tmp_path):
    line, config, _ = _train(cli, shapes, tmp_path / "mine", "--img-size", "16", "--depth", "2", "--batch-size", "4",
                             "--width", "16", "--resize", "0")  # typed at the command's defaults, they still win
    assert (config["img_size"], config["depth"], config["batch_size"], config["width"]) == (16, 2, 4, 16)
    assert config["plan"]["values"] == {} and config["resize"] == 0
    assert line.endswith("set by you: depth, width, img_size, batch_size, resize, epochs")


@pytest.mark.parametrize("fp, want", [
    # the shapes set: the recipe measured on it before plans existed
    ({"images": 240, "side_median": 64, "object_side": 0.39},
     {"depth": 3, "width": 16, "img_size": 64, "batch_size": 16, "resize": 0, "epochs": 150}),
    # Weizmann horses (278 photos, median shorter side 378 px, a horse as long as the photo is high): seen whole
    ({"images": 278, "side_median": 378, "object_side": 1.02},
     {"depth": 5, "width": 32, "img_size": 256, "batch_size": 4, "resize": 256, "epochs": 129}),
    # 512-px microscopy (25 images of cells 30 px across): every pixel kept
    ({"images": 25, "side_median": 512, "object_side": 0.06},
     {"depth": 5, "width": 32, "img_size": 256, "batch_size": 4, "resize": 0, "epochs": 150}),
    # objects of 360 px in 600-px images, larger than a 256-px patch: shrunk until one fits (256 / 0.6 = 427)
    ({"images": 100, "side_median": 600, "object_side": 0.6},
     {"depth": 5, "width": 32, "img_size": 256, "batch_size": 4, "resize": 427, "epochs": 150}),
    # a plan saved before object sizes were measured: the images' own size
    ({"images": 100, "side_median": 150},
     {"depth": 4, "width": 32, "img_size": 144, "batch_size": 12, "resize": 0, "epochs": 150}),
])
def test_the_rules_give_the_recipes_they_name(fp, want):
    from dltool.core.run import RunConfig
    from dltool.core.train import EngineConfig
    from dltool.vision.segment import TrainConfig
    from dltool.vision.segplan import plan_segment

    cfg = TrainConfig(data="d", engine=EngineConfig(epochs=150), run=RunConfig(batch_size=16, val_split=0.0),
                      given=frozenset())
    assert plan_segment(fp, cfg) == want
    timed = TrainConfig(data="d", engine=EngineConfig(time_limit=10), given=frozenset({"time_limit"}))
    assert "epochs" not in plan_segment(fp, timed)  # the budget sets the epochs


def test_a_time_limit_sizes_the_unet_for_the_budget():
    from dltool.core.train import EngineConfig
    from dltool.vision.segment import TrainConfig
    from dltool.vision.segplan import plan_segment

    horses = {"images": 278, "side_median": 378, "object_side": 1.02}  # each patch shows a whole horse
    timed = TrainConfig(data="d", engine=EngineConfig(time_limit=10), given=frozenset({"time_limit"}))
    # a GPU (5 ms a reference step): the data's own recipe shows 16,000 patches (4,750 steps of 4) in 10 minutes
    assert plan_segment({**horses, "step_s": 0.005}, timed) == {"depth": 5, "width": 32, "img_size": 256, "batch_size": 4,
                                                                "resize": 256}
    # 0.1 s: the largest that does (256 px at width 16 would be 950 steps of 4 patches)
    assert plan_segment({**horses, "step_s": 0.1}, timed) == {"depth": 4, "width": 16, "img_size": 128, "batch_size": 16,
                                                               "resize": 128}
    # the idle 2-core CPU as measured on the horses (0.137 s): 128 px would be 830 steps of 16; in 30 minutes 2,500
    # (256 px at width 16 would be 2,080 steps of 4: 8,300 patches, too few to learn from)
    assert plan_segment({**horses, "step_s": 0.137}, timed) == {"depth": 3, "width": 16, "img_size": 64, "batch_size": 16,
                                                                "resize": 64}
    half_hour = TrainConfig(data="d", engine=EngineConfig(time_limit=30), given=frozenset({"time_limit"}))
    assert plan_segment({**horses, "step_s": 0.137}, half_hour) == {"depth": 4, "width": 16, "img_size": 128,
                                                                   "batch_size": 16, "resize": 128}
    # what the user set stays: their width 32 leaves only the patch to shrink
    mine = TrainConfig(data="d", engine=EngineConfig(time_limit=10), width=32, given=frozenset({"time_limit", "width"}))
    assert plan_segment({**horses, "step_s": 0.1}, mine) == {"depth": 3, "width": 32, "img_size": 64, "batch_size": 16,
                                                             "resize": 64}


def test_a_time_limit_run_times_a_step_and_says_so(cli, shapes, tmp_path):
    line, config, _ = _train(cli, shapes, tmp_path / "a", "--time-limit", "0.05")
    step_s = config["plan"]["fingerprint"]["step_s"]
    assert 0 < step_s < 60 and f"step_s {step_s:.3g}" in line
    line, config, _ = _train(cli, shapes, tmp_path / "b", "--time-limit", "0.05", "--img-size", "32", "--depth", "2",
                             "--width", "8")
    assert "step_s" not in config["plan"]["fingerprint"]  # nothing left to size


def test_patches_over_sample_the_rarer_class_and_repeat_for_the_same_epoch():
    from dltool.vision.segment import PatchBatches

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (1, 120, 160), dtype=np.uint8) for _ in range(30)]
    masks = []
    for _ in range(30):
        m = np.zeros((120, 160), np.uint8)
        y, x = rng.integers(0, 110), rng.integers(0, 150)
        m[y:y + 6, x:x + 6] = 1  # a small rare object: a uniform 24-px patch shows it about 5% of the time
        masks.append(m)
    batches = PatchBatches(images, masks, 24, 10, shuffle=True, seed=0, device=torch.device("cpu"), commonest=0)
    shown = []
    for epoch in range(4):
        batches.set_epoch(epoch)
        shown += [bool((y == 1).any()) for _, ys in batches for y in ys]
    assert 0.25 < np.mean(shown) < 0.6  # about a third centred on it, plus the uniform ones that catch it
    batches.set_epoch(2)
    first = [x.clone() for x, _ in batches]
    batches.set_epoch(2, start_batch=1)  # a resumed epoch cuts the same patches from where it stopped
    assert all(torch.equal(a, b) for a, b in zip(first[1:], [x for x, _ in batches]))
    small = PatchBatches(images[:2], masks[:2], 128, 2, shuffle=False, seed=0, device=torch.device("cpu"), commonest=0)
    x, y = next(iter(small))
    assert x.shape == (2, 1, 128, 128) and (y[:, 120:] == 255).all()  # padding is ignored


def test_jpeg_masks_of_another_size_are_thresholded_and_resized(cli, tmp_path):
    data = tmp_path / "d"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        truth = np.zeros((30, 40), np.uint8)
        truth[5:25, 8 + i:30 + i] = 255
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(data / "images" / f"{i}.png")
        half = Image.fromarray(truth).resize((20, 15), Image.NEAREST)  # drawn at half the photo's size, saved lossy
        half.save(data / "masks" / f"{i}.jpg", quality=75)
    out = tmp_path / "run"
    r = cli("vision", "segment", "train", data, "--model", "unet_tiny", *FAST, "--out", out)
    assert r.code == 0, r.stderr
    assert "masks: 4 JPEG masks thresholded at 128 and 4 masks resized to their image's size" in r.stderr
    assert torch.load(out / "model.pt", weights_only=True)["classes"] == ["0", "1"]
    r = cli("vision", "segment", "eval", out, data, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert np.array(m["confusion_matrix"]).sum() == 4 * 30 * 40  # judged at the photos' size
    # the horse pixels survive the lossy file and the two resizings (a box of 20 x 22 px in each photo)
    assert abs(m["per_class"]["1"]["pixels"] - 4 * 20 * 22) <= 0.05 * 4 * 20 * 22


def test_object_side_measures_the_objects_not_the_specks():
    from dltool.vision.segplan import object_side

    m = np.zeros((100, 120), np.uint8)
    m[10:50, 30:50] = 1  # 40 px long in a 100-px-high image
    specks = m.copy()
    specks[90, 5] = specks[3, 110] = 1  # compression noise: stray pixels
    assert object_side([m], 0, 255) == object_side([m, specks], 0, 255) == 0.4
    assert object_side([np.zeros((10, 10), np.uint8)], 0, 255) == 0.0


def _photos(root, n=8, seed=0):
    """Photos of 40 x 56 px, each with one object about as long as the photo is high (a bright ellipse, as a
    horse fills its frame), with 0/255 masks."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = Image.new("L", (56, 40), 0)
        x0, y0 = int(rng.integers(0, 20)), int(rng.integers(0, 14))
        ImageDraw.Draw(mask).ellipse((x0, y0, x0 + 35, y0 + 25), fill=255)
        m = np.asarray(mask) > 0
        pixels = rng.integers(0, 90, (40, 56, 3)) + 140 * m[..., None]
        Image.fromarray(pixels.astype(np.uint8)).save(root / "images" / f"{i}.png")
        mask.save(root / "masks" / f"{i}.png")
    return root


def test_objects_larger_than_the_patch_are_trained_on_shrunk_images_and_judged_at_their_own_size(cli, tmp_path):
    data = _photos(tmp_path / "d")
    out = tmp_path / "run"
    line, config, stderr = _train(cli, data, out, "--model", "unet_tiny", "--img-size", "16", "--epochs", "40",
                                  "--batch-size", "2")
    fp = config["plan"]["fingerprint"]
    assert fp["object_side"] == 0.9  # an ellipse 36 px long in a 40-px-high photo
    assert config["resize"] == round(16 / fp["object_side"]) and f"resize={config['resize']}" in line
    assert f"resized to a shorter side of {config['resize']}" in stderr
    assert torch.load(out / "model.pt", weights_only=True)["preprocess"]["resize"] == config["resize"]
    r = cli("vision", "segment", "eval", out, data, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert np.array(m["confusion_matrix"]).sum() == 8 * 40 * 56  # judged at the photos' own size
    assert m["miou"] > 0.8  # it learned the objects at the small scale
    r = cli("vision", "segment", "predict", out, data, "--out", tmp_path / "pred")
    assert r.code == 0, r.stderr
    assert Image.open(tmp_path / "pred" / "masks" / "0.png").size == (56, 40)
    # the user's --resize wins; one smaller than the patch is refused before anything is written
    _, mine, _ = _train(cli, data, tmp_path / "mine", "--model", "unet_tiny", "--img-size", "16", "--resize", "24")
    assert mine["resize"] == 24 and "resize" not in mine["plan"]["values"]
    r = cli("vision", "segment", "train", data, *FAST, "--model", "unet_tiny", "--img-size", "16", "--resize", "8",
            "--out", tmp_path / "bad")
    assert r.code == 1 and "--resize 8 is smaller than the patch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
