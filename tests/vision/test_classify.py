"""vision classify through the CLI: it learns, metrics match sklearn, outputs parse, exports run."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.vision.conftest import CLASSES, FAST


def test_train_writes_a_complete_run_and_learns(cli, digits, tmp_path):
    out = tmp_path / "run"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--tensorboard")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["val_accuracy"] > 0.8  # three classes: chance is 0.33
    for name in ("model.pt", "best.pt", "last.pt", "metrics.jsonl", "summary.json", "config.toml", "curves.png"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["format"] == "dltool-model" and ckpt["task"] == "vision-classify"
    assert ckpt["classes"] == list(CLASSES) and ckpt["preprocess"]["mode"] == "L"


def test_existing_run_is_not_replaced_without_force(cli, digits, trained):
    before = (trained / "model.pt").read_bytes()
    r = cli("vision", "classify", "train", digits[0], "--out", trained, *FAST)
    assert r.code == 1 and "--force" in r.stderr
    assert (trained / "model.pt").read_bytes() == before


def test_config_toml_repeats_the_run(cli, digits, trained, tmp_path):
    out = tmp_path / "again"
    r = cli("vision", "classify", "train", "--config", trained / "config.toml", "--out", out, "--quiet")
    assert r.code == 0, r.stderr
    a = torch.load(trained / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_matches_sklearn_on_predictions(cli, digits, trained, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    r = cli("vision", "classify", "eval", trained / "model.pt", digits[1], "--out", tmp_path / "ev")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    p = cli("vision", "classify", "predict", trained, digits[1])
    preds = [json.loads(line) for line in p.stdout.splitlines()]
    y_true = [x["true_label"] for x in preds]
    y_pred = [x["label"] for x in preds]
    assert m["n"] == len(preds) == 60
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["precision_macro"] == pytest.approx(precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["recall_macro"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
    assert np.array(m["confusion_matrix"]).sum() == 60
    assert m["accuracy"] > 0.8
    assert {"metrics.json", "confusion.json", "confusion.png"} <= {f.name for f in (tmp_path / "ev").iterdir()}


def test_eval_macro_averages_are_the_per_class_means(cli, digits, trained, tmp_path):
    """Images of 7s filed under '1': the model predicts 7, a class the data lacks. The macro averages and the
    per-class table both cover it (support 0), so they agree, and both match scikit-learn's default."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    from tests.vision.conftest import write_digits

    data = write_digits(tmp_path / "mixed", 10, offset=60, classes=("0", "7"))
    (data / "7").rename(data / "1")
    r = cli("vision", "classify", "eval", trained, data)
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert set(m["per_class"]) == set(m["macro_classes"]) == {"0", "1", "7"}
    assert m["per_class"]["7"]["support"] == 0 and m["per_class"]["1"]["support"] == 10
    for metric in ("precision", "recall", "f1"):
        assert m[f"{metric}_macro"] == pytest.approx(np.mean([c[metric] for c in m["per_class"].values()]))
    preds = [json.loads(line) for line in cli("vision", "classify", "predict", trained, data).stdout.splitlines()]
    y_true, y_pred = [x["true_label"] for x in preds], [x["label"] for x in preds]
    assert "7" in y_pred
    assert m["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["precision_macro"] == pytest.approx(precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["recall_macro"] == pytest.approx(recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert "macro" in r.stderr and "in the data or predicted" in r.stderr


def test_predict_files_stdin_topk_and_output_file(cli, digits, trained, tmp_path):
    files = sorted(digits[1].rglob("*.png"))[:5]
    r = cli("vision", "classify", "predict", trained, "--topk", "2", input="\n".join(map(str, files)) + "\n")
    assert r.code == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["path"] for x in lines] == [str(f) for f in files]
    for x in lines:
        assert x["label"] in CLASSES and 0 < x["score"] <= 1 and len(x["topk"]) == 2
        assert x["topk"][0]["label"] == x["label"]
    out = tmp_path / "p.jsonl"
    r = cli("vision", "classify", "predict", trained, *map(str, files), "-o", out)
    assert r.code == 0 and r.stdout == ""
    assert len(out.read_text().splitlines()) == 5


def test_predict_embed_is_a_feature_table_with_true_class(cli, digits, trained):
    from dltool.core.tables import _read_jsonl

    r = cli("vision", "classify", "predict", trained, digits[1], "--embed")
    assert r.code == 0, r.stderr
    t = _read_jsonl(r.stdout, "stdout")
    assert len(t) == 60
    assert t.passthrough_names() == ["path", "true_label"]
    assert set(t.columns["true_label"]) == set(CLASSES)
    assert len(t.numeric_names()) == 32  # cnn --width 8: 8, 16, 32 channels


def test_export_onnx_matches_pytorch(cli, trained, digits, tmp_path):
    import onnxruntime as ort

    from dltool.vision.classify import load

    r = cli("vision", "classify", "export", trained / "model.pt", "-o", tmp_path / "m.onnx", "--device", "cpu")
    assert r.code == 0, r.stderr
    spec = json.loads((tmp_path / "m.onnx.json").read_text())
    assert spec["classes"] == list(CLASSES) and spec["traced_on"] == "cpu"
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    lm = load(trained, torch.device("cpu"))
    with torch.inference_mode():
        want = lm.model((torch.from_numpy(x) - lm.task.mean) / lm.task.std).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    r = cli("vision", "classify", "export", trained / "model.pt", "-o", tmp_path / "m.ts")
    assert r.code == 0, r.stderr
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    np.testing.assert_allclose(ts(torch.from_numpy(x)).detach().numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_export_cuda_without_cuda(cli, trained, tmp_path):
    out = tmp_path / "m.ts"
    _fails_cleanly(cli("vision", "classify", "export", trained, "-o", out, "--device", "cuda"), None,
                   "CUDA is not available")
    assert not out.exists() and not (tmp_path / "m.ts.json").exists()


@pytest.mark.gpu
def test_export_torchscript_on_cuda_runs_there(cli, trained, tmp_path):
    from dltool.vision.classify import load

    r = cli("vision", "classify", "export", trained, "-o", tmp_path / "m.ts", "--device", "cuda")
    assert r.code == 0, r.stderr
    assert json.loads((tmp_path / "m.ts.json").read_text())["traced_on"].startswith("cuda")
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.rand(3, 1, 8, 8)
    got = ts(x.cuda())
    assert got.device.type == "cuda"
    lm = load(trained, torch.device("cpu"))
    with torch.inference_mode():
        want = lm.model((x - lm.task.mean) / lm.task.std)
    torch.testing.assert_close(got.float().cpu(), want, rtol=1e-3, atol=1e-3)


def test_pretrained_freeze_backbone_trains_only_the_head(cli, digits, trained, tmp_path):
    out = tmp_path / "ft"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--pretrained", trained / "model.pt",
            "--freeze-backbone", "--epochs", "2")
    assert r.code == 0, r.stderr
    a = torch.load(trained / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "last.pt", weights_only=True)["state_dict"]
    convs = [k for k in a if k.endswith(".weight") and not k.startswith("head.")]
    assert convs and all(torch.equal(a[k], b[k]) for k in convs)
    assert not torch.equal(a["head.weight"], b["head.weight"])


def test_csv_input_augment_and_activation_reach_training(cli, digits, tmp_path, monkeypatch):
    """--augment really runs on every training batch (and changes it); --activation builds that activation."""
    import dltool.vision.classify as classify
    from dltool.vision.augment import augment

    seen = []

    def spy(x, ops):  # calls the real augmentation and records what it did
        y = augment(x, ops)
        seen.append((ops, not torch.equal(x, y)))
        return y

    monkeypatch.setattr(classify, "augment", spy)
    csv = tmp_path / "list.csv"
    rows = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(digits[0].rglob("*.png"))]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r"
    r = cli("vision", "classify", "train", csv, "--out", out, *FAST,
            "--augment", "flip,crop,blur,contrast,saturation,gamma", "--epochs", "2", "--activation", "elu")
    assert r.code == 0, r.stderr
    steps_per_epoch = -(-108 // 16)  # 120 images, 12 held out for validation, batches of 16
    assert len(seen) == 2 * steps_per_epoch
    assert all(ops == ("flip", "crop", "blur", "contrast", "saturation", "gamma") and changed
               for ops, changed in seen)
    model = classify.load(out, torch.device("cpu")).model
    kinds = {type(m).__name__ for m in model.modules()}
    assert "ELU" in kinds and "ReLU" not in kinds


@pytest.mark.parametrize("args,needle", [(["--model", "cnn_tiny", "--width", "64"], "--width does not apply to --model cnn_tiny"),
                                         (["--model", "resnet_tiny", "--no-batch-norm"], "--no-batch-norm")])
def test_options_a_model_does_not_take_are_refused(cli, digits, tmp_path, args, needle):
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", digits[0], "--out", out, "--quiet", *args), out, needle)


def test_streamed_dataloader_path_learns(cli, digits, tmp_path):
    r = cli("vision", "classify", "train", digits[0], "--out", tmp_path / "r", *FAST, "--no-preload",
            "--workers", "0")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["val_accuracy"] > 0.8


# -- bad input: exit 1, one line, nothing left behind -------------------------------------------

def _fails_cleanly(r, out: Path | None, *needles):
    assert r.code == 1, (r.code, r.stderr)
    assert r.stderr.startswith("error: ")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr
    if out is not None:
        assert not out.exists() or not any(out.iterdir())


def test_missing_path(cli, tmp_path):
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", tmp_path / "nope", "--out", out), out, "does not exist")


def test_empty_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", tmp_path / "empty", "--out", out), out, "no images")


def test_dataset_root_with_splits_is_refused(cli, digits, tmp_path):
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", digits[0].parent, "--out", out), out,
                   "not class folders", str(digits[0]))


def test_corrupt_image_is_named_or_skipped(cli, digits, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(digits[0], data)
    bad = data / "1" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", data, "--out", out, *FAST), out, "broken.png", "--skip-bad")
    r = cli("vision", "classify", "train", data, "--out", out, *FAST, "--epochs", "1", "--skip-bad")
    assert r.code == 0 and "skipping unreadable image" in r.stderr and "broken.png" in r.stderr


def test_non_image_file(cli, trained, tmp_path):
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    out = tmp_path / "p.jsonl"
    _fails_cleanly(cli("vision", "classify", "predict", trained, note, "-o", out), None, "not an image")
    assert not out.exists()
    _fails_cleanly(cli("vision", "classify", "train", note, "--out", tmp_path / "r"), tmp_path / "r", "CSV")


def test_model_file_of_the_wrong_task(cli, digits, trained, tmp_path):
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    ckpt["task"] = "reduce"
    torch.save(ckpt, tmp_path / "other.pt")
    _fails_cleanly(cli("vision", "classify", "eval", tmp_path / "other.pt", digits[1]), None, "'reduce' model")


def test_crafted_pickle_is_refused_not_run(cli, digits, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "dltool-model", "payload": Exploit()}, tmp_path / "evil.pt")
    _fails_cleanly(cli("vision", "classify", "predict", tmp_path / "evil.pt", digits[1]), None, "refusing to load")
    assert not marker.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(cli, digits, tmp_path):
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", digits[0], "--out", out, "--device", "cuda"), out,
                   "CUDA is not available")


@pytest.mark.parametrize("args,needle", [(["--epochs", "0"], "--epochs 0"), (["--lr", "-0.1"], "--lr -0.1"),
                                         (["--model", "resnet81"], "resnet18"), (["--optimizer", "adma"], "adam")])
def test_impossible_options(cli, digits, tmp_path, args, needle):
    out = tmp_path / "r"
    _fails_cleanly(cli("vision", "classify", "train", digits[0], "--out", out, *args), out, needle)


# Resume, signals and scale-out of every train command are tested once, for all of them, in
# tests/core/test_train_commands.py and tests/core/test_scale_out.py.


@pytest.mark.gpu
def test_cuda_train_and_predict(cli, digits, tmp_path):
    out = tmp_path / "gpu"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--device", "cuda")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["val_accuracy"] > 0.8
    p = cli("vision", "classify", "predict", out, digits[1], "--device", "cuda")
    assert p.code == 0 and len(p.stdout.splitlines()) == 60


def test_rgb_images_train_and_predict(cli, tmp_path):
    """Colour images: the model is built for 3 channels and learns red vs blue squares."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(24):
            a = rng.integers(0, 60, (12, 12, 3), dtype=np.uint8)
            a[..., channel] = rng.integers(150, 255, (12, 12))
            Image.fromarray(a, mode="RGB").save(tmp_path / "data" / name / f"{i}.png")
    out = tmp_path / "r"
    r = cli("vision", "classify", "train", tmp_path / "data", "--out", out, *FAST)
    assert r.code == 0, r.stderr
    assert torch.load(out / "model.pt", weights_only=True)["preprocess"]["mode"] == "RGB"
    p = cli("vision", "classify", "predict", out, tmp_path / "data")
    preds = [json.loads(line) for line in p.stdout.splitlines()]
    assert np.mean([x["label"] == x["true_label"] for x in preds]) > 0.9


def test_pretrained_torchvision_state_dict(cli, digits, tmp_path):
    """A plain torchvision state_dict (as downloaded by a user) fills the backbone; the head is new."""
    import torchvision

    torch.manual_seed(0)
    weights = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(weights, tmp_path / "resnet18.pth")
    out = tmp_path / "ft"
    r = cli("vision", "classify", "train", digits[0], "--out", out, "--model", "resnet18", "--img-size", "32",
            "--pretrained", tmp_path / "resnet18.pth", "--freeze-backbone", "--epochs", "1", "--quiet")
    assert r.code == 0, r.stderr
    got = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(got["backbone.layer1.0.conv1.weight"], weights["layer1.0.conv1.weight"])
    assert got["head.weight"].shape == (3, 512)


@pytest.mark.slow
def test_compile_trains_and_saves_a_plain_model(cli, digits, tmp_path, monkeypatch):
    """--compile goes through the real torch.compile (inductor on CPU); the model file holds plain keys."""
    compiled = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, *a, **k: compiled.append(m) or real_compile(m, *a, **k))
    out = tmp_path / "c"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--epochs", "1", "--compile")
    assert r.code == 0, r.stderr
    assert len(compiled) == 1
    keys = torch.load(out / "model.pt", weights_only=True)["state_dict"].keys()
    assert not any(k.startswith("_orig_mod") for k in keys)
    assert cli("vision", "classify", "eval", out, digits[1], "--quiet").code == 0


def test_a_piped_table_is_never_cut(cli, trained, digits):
    """--format table to a pipe or file: rich would crop cells at 80 columns (issue 29)."""
    r = cli("vision", "classify", "predict", trained, digits[1], "--format", "table")
    assert r.code == 0, r.stderr
    assert "…" not in r.stdout and str(sorted((digits[1] / "0").glob("*.png"))[0]) in r.stdout
    assert max(map(len, r.stdout.splitlines())) > 80


def test_predict_records_piped_into_cluster_or_reduce(cli, trained, digits, tmp_path):
    """Forgetting --embed: the records' one number is a confidence, refused with what to do; clustering on it
    deliberately (--features score) keeps the nested topk as JSON (issue 29: it raised a TypeError)."""
    preds = tmp_path / "preds.jsonl"
    assert cli("vision", "classify", "predict", trained, digits[1], "-o", preds).code == 0
    for command in (("cluster", "kmeans", preds, "-k", "2"), ("reduce", "pca", preds, "-n", "2")):
        r = cli(*command, "-o", tmp_path / "out.jsonl")
        assert r.code == 1 and "add --embed" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "out.jsonl").exists()
    for out in (tmp_path / "k.jsonl", tmp_path / "k.csv"):
        r = cli("cluster", "kmeans", preds, "-k", "2", "--features", "score", "-o", out)
        assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    originals = [json.loads(line) for line in preds.read_text().splitlines()]
    assert [r["topk"] for r in rows] == [o["topk"] for o in originals]
    import csv

    with (tmp_path / "k.csv").open() as f:
        assert [json.loads(r["topk"]) for r in csv.DictReader(f)] == [o["topk"] for o in originals]


def test_pool_max_reaches_the_network_and_a_bad_pool_is_refused(cli, digits, tmp_path):
    # max pooling: a small object's features are not averaged away over the map (the one-shape set stays at chance with avg)
    out = tmp_path / "max"
    r = cli("vision", "classify", "train", digits[0], "--out", out, *FAST, "--pool", "max")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["val_accuracy"] > 0.8
    from dltool.vision import classify

    net = classify.load(out / "model.pt", "cpu").model
    assert isinstance(net.features[-2], torch.nn.AdaptiveMaxPool2d)
    bad = tmp_path / "bad"
    _fails_cleanly(cli("vision", "classify", "train", digits[0], "--out", bad, "--pool", "median"), bad, "max")
    tiny = tmp_path / "tiny"
    _fails_cleanly(cli("vision", "classify", "train", digits[0], "--out", tiny, "--model", "cnn_tiny", "--pool", "max"),
                   tiny, "--pool")
