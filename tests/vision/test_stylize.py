"""dltool vision stylize through the CLI, with a VGG16 of random weights saved in torchvision's format."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """torchvision's vgg16 `features` with random weights (torchvision's VGG init: He normal, fan out, so deep
    features keep their scale), saved under its state_dict names (features.*)."""
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    for layer in features:
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture
def images(tmp_path):
    """A 32x16 content image (two flat halves) and a 20x20 striped style image."""
    from PIL import Image

    content = np.zeros((16, 32, 3), np.uint8)
    content[:, :16] = (200, 60, 40)
    content[:, 16:] = (30, 90, 210)
    style = np.zeros((20, 20, 3), np.uint8)
    style[::4] = 255
    style[:, ::5, 1] = 180
    Image.fromarray(content).save(tmp_path / "content.png")
    Image.fromarray(style).save(tmp_path / "style.png")
    return tmp_path / "content.png", tmp_path / "style.png"


def test_stylize_lowers_the_loss_and_writes_an_image_of_the_contents_size(cli, vgg16_file, images, tmp_path):
    from PIL import Image

    content, style = images
    out = tmp_path / "out" / "styled.png"
    r = cli("vision", "stylize", content, "--style", style, "--weights", vgg16_file, "--steps", 10,
            "--style-weight", 1e4, "--init", "noise", "-o", out, "--format", "json")
    assert r.code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["arch"] == "vgg16" and res["size"] == [32, 16] and res["output"] == str(out)
    curve = res["loss_curve"]
    assert len(curve) == res["evaluations"] <= 10 and res["evaluations"] >= 5
    assert curve[-1] < 0.5 * curve[0] and res["loss_end"] == pytest.approx(curve[-1], rel=1e-5)
    image = Image.open(out)
    assert image.size == (32, 16) and image.mode == "RGB"
    # from the content, with no style weight, the content image itself is already optimal: it stays
    same = tmp_path / "same.png"
    r = cli("vision", "stylize", content, "--style", style, "--weights", vgg16_file, "--steps", 3,
            "--style-weight", 0, "-o", same, "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["loss_start"] == 0
    assert np.array_equal(np.asarray(Image.open(same)), np.asarray(Image.open(content)))


def test_vgg_architectures_are_told_apart():
    import torch

    from dltool.core.errors import ModelFileError
    from dltool.vision.stylize import ARCHS, expected_shapes, vgg_arch

    for arch in ARCHS:
        state = {k: torch.empty(s) for k, s in expected_shapes(arch).items()}
        state["classifier.0.weight"] = torch.empty(2, 2)  # torchvision's full files carry the classifier too
        assert vgg_arch(state, "w.pth") == arch
    state = {k: torch.empty(s) for k, s in expected_shapes("vgg19").items()}
    state.pop("features.34.weight")
    with pytest.raises(ModelFileError):
        vgg_arch(state, "w.pth")


@pytest.mark.parametrize("case,message,code", [
    ("no weights", "vision stylize needs a VGG's weights (--weights) — dltool downloads nothing: get torchvision's", 1),
    ("other arch", "is not a VGG16 or VGG19 state_dict in torchvision's format (its tensors start conv1.weight", 1),
    ("not tensors", "is not a state_dict of tensors", 1),
    ("bad init", "unknown --init 'zeros'", 1),
    ("no content", "content image", 1),
    ("corrupt style", "cannot read the style image", 1),
    ("jpg output", "the stylized image is written as PNG", 1),
    pytest.param("no cuda", "--device cuda was asked for but CUDA is not available", 1,
                 marks=pytest.mark.skipif("__import__('torch').cuda.is_available()")),
])
def test_stylize_bad_input_is_one_line_and_writes_nothing(cli, images, tmp_path, case, message, code):
    import torch

    content, style = images
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(2, 4)}, other)
    junk = tmp_path / "junk.pth"
    torch.save({"a": 1}, junk)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "o.png"
    args = {"no weights": [content, "--style", style],
            "other arch": [content, "--style", style, "--weights", other],
            "not tensors": [content, "--style", style, "--weights", junk],
            "bad init": [content, "--style", style, "--weights", other, "--init", "zeros"],
            "no content": [tmp_path / "missing.png", "--style", style, "--weights", other],
            "corrupt style": [content, "--style", bad, "--weights", other],
            "jpg output": [content, "--style", style, "--weights", other, "-o", tmp_path / "o.jpg"],
            "no cuda": [content, "--style", style, "--weights", other, "--device", "cuda"]}[case]
    if "-o" not in args:
        args += ["-o", out]
    r = cli("vision", "stylize", *args)
    assert r.code == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not out.exists() and not (tmp_path / "o.jpg").exists()


@pytest.mark.gpu
def test_stylize_on_cuda_lowers_the_loss(cli, vgg16_file, images, tmp_path):
    content, style = images
    r = cli("vision", "stylize", content, "--style", style, "--weights", vgg16_file, "--steps", 10,
            "--style-weight", 1e4, "--init", "noise", "--device", "cuda", "-o", tmp_path / "gpu.png", "--format", "json")
    assert r.code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["loss_end"] < 0.5 * res["loss_start"] and (tmp_path / "gpu.png").exists()
