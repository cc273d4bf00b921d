"""vision classify attack and train --adversarial through the CLI: accuracy under FGSM / PGD against an
independent evaluation, the eps curve and saved images, adversarial training, and bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.vision.conftest import FAST


def test_pgd_accuracy_falls_with_eps_and_eps_0_is_eval(cli, trained, digits, tmp_path):
    save, plot = tmp_path / "adv", tmp_path / "curve.png"
    r = cli("vision", "classify", "attack", trained, digits[1], "--method", "pgd", "--eps", "0,0.3", "--steps", "5",
            "--save", save, "--plot", plot, "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    ev = json.loads(cli("vision", "classify", "eval", trained, digits[1], "--format", "json").stdout)
    assert m["n"] == 60 and m["eps"] == [0.0, 0.3]
    assert m["clean_accuracy"] == pytest.approx(ev["accuracy"]) == pytest.approx(m["adversarial_accuracy"][0])
    assert m["adversarial_accuracy"][1] < m["clean_accuracy"] - 0.3
    assert plot.stat().st_size > 0 and m["saved"] == 120
    # the images keep their names under one folder per eps, and stay within eps of the input (8-bit rounding)
    originals = sorted(digits[1].rglob("*.png"))
    for src in originals[:5]:
        adv = np.asarray(Image.open(save / "eps0.3" / src.relative_to(digits[1])), dtype=float)
        clean = np.asarray(Image.open(src), dtype=float)
        assert np.abs(adv - clean).max() <= 0.3 * 255 + 0.5
    assert len(list((save / "eps0").rglob("*.png"))) == 60


def test_fgsm_l2_stays_in_its_ball():
    from dltool.vision.attack import perturb

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    for method in ("fgsm", "pgd"):
        adv = perturb(net, x, y, eps=0.5, method=method, norm="l2", steps=5)
        assert ((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all() and adv.min() >= 0 and adv.max() <= 1
        loss = torch.nn.functional.cross_entropy
        assert loss(net(adv), y) > loss(net(x), y)


def test_adversarial_training_learns_and_resists_better(cli, digits, trained, tmp_path):
    out = tmp_path / "adv"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--adversarial", "pgd", "--adv-eps", "0.15",
            "--adv-steps", "2")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["val_accuracy"] > 0.6
    attacked = {}
    for name, model in (("plain", trained), ("adversarial", out)):
        r = cli("vision", "classify", "attack", model, digits[1], "--eps", "0.15", "--steps", "5", "--format", "json")
        assert r.code == 0, r.stderr
        attacked[name] = json.loads(r.stdout)["adversarial_accuracy"][0]
    assert attacked["adversarial"] > attacked["plain"], attacked


@pytest.mark.parametrize("args,message", [
    (("--eps", "-1"), "--eps -1 must be a number >= 0"),
    (("--eps", "x"), "--eps 'x' is not a comma-separated list"),
    (("--method", "fgsm", "--steps", "3"), "--steps does not apply to --method fgsm"),
    (("--norm", "l1"), "unknown norm 'l1'"),
])
def test_bad_attack_options_exit_1_and_leave_nothing(cli, trained, digits, tmp_path, args, message):
    save = tmp_path / "adv"
    r = cli("vision", "classify", "attack", trained, digits[1], *args, "--save", save)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not save.exists()


def test_a_detector_model_is_refused(cli, digits, tmp_path):
    from dltool.core.modelfile import save_model

    model = tmp_path / "det.pt"
    save_model(model, task="vision-detect", arch="yolo_tiny", arch_kwargs={}, state_dict={}, classes=["a"])
    r = cli("vision", "classify", "attack", model, digits[1], "--save", tmp_path / "adv")
    assert r.code == 1
    assert r.stderr.strip().splitlines() == [
        f"error: '{model}' is a 'vision-detect' model, not a 'vision-classify' model — pass a model trained for this task"]
    assert not (tmp_path / "adv").exists()


@pytest.mark.parametrize("args,message", [
    (("--adv-eps", "0.1"), "--adv-eps does not apply to --adversarial None"),
    (("--adversarial", "fgsm", "--adv-steps", "3"), "--adv-steps does not apply to --adversarial fgsm"),
    (("--adversarial", "pgd", "--adv-ratio", "0"), "--adv-ratio 0.0 must be in (0, 1]"),
    (("--adversarial", "cw"), "unknown adversarial training method 'cw'"),
])
def test_bad_adversarial_options(cli, digits, tmp_path, args, message):
    out = tmp_path / "run"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, *args)
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_pgd_agrees_with_an_independent_pgd(cli, trained, digits):
    """`attack` against a PGD written here from Madry et al. 2018 (eval mode, the model's normalisation
    inside, a random start in the ball, sign steps, projection to the ball and to [0, 1]): the same
    accuracy under attack within 3 of the 60 images, and five times the steps find little more."""
    import torch.nn.functional as F

    from dltool.core import images, inputs
    from dltool.vision import classify

    lm = classify.load(trained, "cpu")
    items = inputs.scan_labelled(digits[1], images.IMAGES)
    pixels, kept = images.decode([it.path for it in items], lm.preprocess["img_size"], lm.preprocess["mode"],
                                 skip_bad=False)
    x = torch.from_numpy(pixels).float() / 255
    y = torch.tensor([lm.classes.index(items[i].label) for i in kept])
    mean, std = (torch.tensor(lm.preprocess[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    net = lm.model.eval()

    def pgd(eps: float, steps: int, alpha: float) -> float:
        torch.manual_seed(0)
        d = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1) - x
        for _ in range(steps):
            d.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(net((x + d - mean) / std), y), d)
            d = (x + (d.detach() + alpha * g.sign()).clamp(-eps, eps)).clamp(0, 1) - x
        with torch.no_grad():
            return (net((x + d - mean) / std).argmax(1) == y).float().mean().item()

    eps = 0.15
    r = cli("vision", "classify", "attack", trained, digits[1], "--eps", str(eps), "--steps", "10", "--format", "json")
    assert r.code == 0, r.stderr
    ours = json.loads(r.stdout)["adversarial_accuracy"][0]
    reference, stronger = pgd(eps, 10, 2.5 * eps / 10), pgd(eps, 50, eps / 10)
    assert 0.1 < reference < 0.9  # an eps where the attack neither fails nor wins outright
    assert abs(ours - reference) <= 3 / 60 and ours - stronger <= 3 / 60
