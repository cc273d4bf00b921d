"""vision classify prune through the CLI: global magnitude pruning to the asked sparsity, fine-tuned, masks
made permanent (a plain model file), the sparsity in the file and in eval, structured channels, the
iterative schedule, and bad input."""

import json

import pytest
import torch

PRUNE = ["--epochs", "1", "--batch-size", "16", "--quiet", "--format", "json"]


def _weights(state: dict) -> list[torch.Tensor]:
    """The conv and linear weights (what unstructured pruning ranks)."""
    return [v for k, v in state.items() if k.endswith("weight") and v.dim() in (2, 4)]


def test_unstructured_pruning_reaches_the_amount_and_eval_reports_it(cli, trained, digits, tmp_path):
    out = tmp_path / "pruned"
    r = cli("vision", "classify", "prune", trained, digits[0], "--amount", "0.6", "--out", out, *PRUNE, "--epochs", "2")
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)
    # model.pt is the end of fine-tuning, not the first of the epochs whose validation accuracy ties
    assert report["best_epoch"] == report["epochs_run"] == 2
    ckpt = torch.load(out / "model.pt", weights_only=True)
    last = torch.load(out / "last.pt", weights_only=True)["state_dict"]
    w = last["features.0.weight_orig"] * last["features.0.weight_mask"]
    assert torch.equal(ckpt["state_dict"]["features.0.weight"], w)
    assert not any(k.endswith(("_orig", "_mask")) for k in ckpt["state_dict"])  # masks made permanent
    weights = _weights(ckpt["state_dict"])
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.6, abs=0.01)
    assert zeros == pytest.approx(ckpt["sparsity"]["zero_share"], abs=1e-6)
    assert report["sparsity"]["zero_share"] == ckpt["sparsity"]["zero_share"]
    assert report["after"]["zeros"] >= zeros * sum(w.numel() for w in weights)
    assert report["after"]["compressed_bytes"] < report["before"]["compressed_bytes"]
    assert json.loads((out / "prune.json").read_text())["speedup"] == report["speedup"]
    ev = cli("vision", "classify", "eval", out, digits[1], "--format", "json")
    assert ev.code == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["sparsity"] == ckpt["sparsity"]["zero_share"] and m["accuracy"] > 0.6


def test_structured_pruning_zeroes_whole_channels_on_a_schedule(cli, trained, digits, tmp_path):
    out = tmp_path / "pruned"
    r = cli("vision", "classify", "prune", trained, digits[0], "--amount", "0.5", "--structured", "--schedule", "3",
            "--out", out, *PRUNE[2:], "--epochs", "3")
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # the steps after epochs 1 and 2 prune further (each row: the sparsity its validation saw)
    assert rows[0]["sparsity"] < rows[1]["sparsity"] == rows[2]["sparsity"]
    state = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    convs = [v for v in _weights(state) if v.dim() == 4]
    for w in convs:
        dead = (w.flatten(1).abs().sum(1) == 0).float().mean()
        assert dead == pytest.approx(0.5, abs=0.13)  # half the output channels of each (8 or 16 of them)
    head = next(v for k, v in state.items() if k == "head.weight")
    assert (head != 0).all()  # structured pruning leaves the classes' rows alone
    assert report["after"]["slim_parameters"] < report["after"]["parameters"]


@pytest.mark.parametrize("args,code,message", [
    (("--amount", "1.5"), 1, "--amount 1.5 must be in (0, 1)"),
    (("--amount", "0"), 1, "--amount 0.0 must be in (0, 1)"),
    (("--schedule", "3"), 1, "--schedule 3 steps need at least as many --epochs"),
    (("--init", "he"), 2, "No such option: --init"),
])
def test_bad_prune_options_leave_no_run_folder(cli, trained, digits, tmp_path, args, code, message):
    out = tmp_path / "pruned"
    r = cli("vision", "classify", "prune", trained, digits[0], "--out", out, *PRUNE, *args)
    assert r.code == code
    assert message in r.stderr
    if code == 1:
        assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_model_of_another_task_is_refused(cli, digits, tmp_path):
    from dltool.core.modelfile import save_model

    model = tmp_path / "det.pt"
    save_model(model, task="vision-detect", arch="yolo_tiny", arch_kwargs={}, state_dict={}, classes=["a"])
    r = cli("vision", "classify", "prune", model, digits[0], "--out", tmp_path / "p", *PRUNE)
    assert r.code == 1 and "is a 'vision-detect' model" in r.stderr
    assert not (tmp_path / "p").exists()
