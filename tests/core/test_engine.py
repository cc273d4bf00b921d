"""The training engine on a tiny tabular task: every optimizer, scheduler, init and clip option works."""

import json
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.data import TensorBatches
from dltool.core.errors import OptionError
from dltool.core.train import DEFAULT_LR, INITS, SCHEDULERS, Engine, EngineConfig


class BlobTask:
    monitor, monitor_mode, channels_last = "accuracy", "max", False

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model, batches):
        correct = n = 0
        loss = 0.0
        for x, y in batches:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
        return {"loss": loss / n, "accuracy": correct / n}

    def payload(self, model):
        return {"task": "test", "arch": "mlp", "arch_kwargs": {}, "state_dict": model.state_dict()}


def blobs(seed=0):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(300, n_features=4, centers=3, cluster_std=1.0, random_state=seed)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def fit(tmp_path, **kw):
    torch.manual_seed(0)
    X, y = blobs()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = EngineConfig(**{"epochs": 8, **kw})
    train = TensorBatches((X[:240], y[:240]), 32, shuffle=True, seed=0)
    val = TensorBatches((X[240:], y[240:]), 64, shuffle=False)
    return Engine(BlobTask(), model, cfg, tmp_path, torch.device("cpu"), {"epochs": cfg.epochs}).fit(train, val)


@pytest.mark.parametrize("optimizer", sorted(DEFAULT_LR))
def test_every_optimizer_learns(tmp_path, optimizer):
    lr = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.1, "adam": 0.01, "adamw": 0.01,
          "rmsprop": 0.01}.get(optimizer)
    summary = fit(tmp_path, optimizer=optimizer, lr=lr)
    assert summary["val_accuracy"] > 0.9, summary


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_runs_and_moves_the_lr(tmp_path, scheduler):
    summary = fit(tmp_path, scheduler=scheduler, lr=0.01)
    assert summary["val_accuracy"] > 0.9
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    if scheduler in ("step", "cosine", "onecycle"):
        assert len(set(lrs)) > 1


@pytest.mark.parametrize("init", INITS)
def test_inits(tmp_path, init):
    assert fit(tmp_path, init=init, lr=0.01)["val_accuracy"] > 0.9


def test_early_stop(tmp_path):
    s = fit(tmp_path, early_stop=1, epochs=30, lr=0.05)
    assert s["stopped_early"] and s["epochs_run"] < 30 and "early stop" in s["stop_reason"]


def _one_sgd_step(tmp_path, **kw):
    """One plain-SGD step (lr 1) on a batch with large gradients: the update is minus the clipped gradient."""
    X, y = blobs()
    X = X * 50  # large inputs, large gradients
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    before = [p.detach().clone() for p in model.parameters()]
    cfg = EngineConfig(epochs=1, optimizer="sgd", lr=1.0, seed=0, **kw)
    Engine(BlobTask(), model, cfg, tmp_path, torch.device("cpu")).fit(TensorBatches((X, y), 300, shuffle=False))
    return [p.detach() - b for p, b in zip(model.parameters(), before)]


def test_clip_value_bounds_every_gradient_value(tmp_path):
    assert max(d.abs().max().item() for d in _one_sgd_step(tmp_path / "free")) > 0.1  # unclipped: large
    deltas = _one_sgd_step(tmp_path / "clipped", clip_value=0.01)
    assert max(d.abs().max().item() for d in deltas) <= 0.01 + 1e-7


def test_clip_norm_bounds_the_global_gradient_norm(tmp_path):
    def norm(deltas):
        return torch.sqrt(sum((d ** 2).sum() for d in deltas)).item()

    assert norm(_one_sgd_step(tmp_path / "free")) > 1.0
    assert norm(_one_sgd_step(tmp_path / "clipped", clip_norm=0.5)) == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("init,std", [("he", (2 / 256) ** 0.5), ("xavier", (2 / (256 + 256)) ** 0.5),
                                      ("default", (1 / (3 * 256)) ** 0.5)])  # torch's kaiming_uniform(a=sqrt(5))
def test_init_reaches_the_weights(tmp_path, init, std):
    """--init through the engine: the weights of a barely trained model have the scheme's spread."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 3))
    x, y = torch.randn(64, 256), torch.randint(0, 3, (64,))
    cfg = EngineConfig(epochs=1, optimizer="sgd", lr=1e-12, init=init, seed=0)
    Engine(BlobTask(), model, cfg, tmp_path, torch.device("cpu")).fit(TensorBatches((x, y), 64, shuffle=False))
    assert model[0].weight.std().item() == pytest.approx(std, rel=0.03)
    if init != "default":
        assert model[0].bias.abs().max().item() < 1e-9  # zeroed (a 1e-12 step moved them by ~1e-14)


def test_he_and_xavier_follow_their_definitions():
    from dltool.core.train import init_weights

    torch.manual_seed(0)
    layer = nn.Linear(1000, 1000)
    init_weights(layer, "he")
    assert layer.weight.std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.02)
    init_weights(layer, "xavier")
    assert layer.weight.std().item() == pytest.approx((2 / 2000) ** 0.5, rel=0.02)
    assert torch.all(layer.bias == 0)


@pytest.mark.parametrize("kw,needle", [({"epochs": 0}, "--epochs"), ({"lr": -1.0}, "--lr"),
                                       ({"lr": float("nan")}, "--lr"), ({"optimizer": "sdg"}, "sgd"),
                                       ({"clip_norm": 0.0}, "--clip-norm"),
                                       ({"optimizer": "lbfgs", "weight_decay": 0.1}, "weight decay"),
                                       ({"optimizer": "adagrad", "momentum": 0.5}, "no momentum term"),
                                       ({"optimizer": "sgd", "momentum": 1.0}, "[0, 1)"),
                                       ({"optimizer": "nesterov", "momentum": 0.0}, "above 0")])
def test_config_validation(kw, needle):
    with pytest.raises(OptionError, match=None) as e:
        EngineConfig(**kw).validate()
    assert needle in str(e.value)


def _shards(n, batch, world, split_batch, shuffle=True):
    out = []
    for r in range(world):
        b = TensorBatches((torch.arange(n),), batch, shuffle=shuffle, seed=1)
        b.shard(r, world, split_batch=split_batch)
        out.append([t[0] for t in b])
    return out


def test_training_shards_are_equal_disjoint_and_split_the_batch():
    shards = _shards(10, 6, 3, split_batch=True)
    assert all(len(torch.cat(s)) == 3 for s in shards)  # 10 // 3 each: equal step counts for DDP
    assert all(len(s[0]) == 2 for s in shards)  # the global batch of 6 split over 3 ranks
    assert len(set(torch.cat([torch.cat(s) for s in shards]).tolist())) == 9  # disjoint


def test_validation_shards_see_every_item_once():
    shards = _shards(10, 4, 3, split_batch=False, shuffle=False)
    seen = sorted(torch.cat([torch.cat(s) for s in shards]).tolist())
    assert seen == list(range(10))


def test_batch_size_that_does_not_split_is_refused():
    b = TensorBatches((torch.arange(100),), 64, shuffle=True)
    with pytest.raises(OptionError, match="--batch-size 64 does not split evenly over 3") as e:
        b.shard(0, 3, split_batch=True)
    assert "63 or 66" in str(e.value)


def test_resumed_epoch_skips_the_batches_it_has_seen():
    b = TensorBatches((torch.arange(10),), 3, shuffle=True, seed=4)
    b.set_epoch(2)
    full = [t[0].tolist() for t in b]
    b.set_epoch(2, start_batch=2)
    assert [t[0].tolist() for t in b] == full[2:]


@pytest.mark.parametrize("amp, dtype", [(None, torch.float32), (False, torch.float32), (True, torch.bfloat16)])
def test_amp_on_a_cpu_is_bfloat16_when_asked_and_float32_by_default(tmp_path, amp, dtype):
    """--amp on a CPU computes the layers in bfloat16 under autocast, and the model still learns; without it (the
    default) or with --no-amp, float32. The weights stay float32 either way."""
    torch.manual_seed(0)
    X, y = blobs()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    seen = set()
    model[0].register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    train = TensorBatches((X[:240], y[:240]), 32, shuffle=True, seed=0)
    val = TensorBatches((X[240:], y[240:]), 64, shuffle=False)
    summary = Engine(BlobTask(), model, EngineConfig(epochs=8, lr=0.01, amp=amp), tmp_path,
                     torch.device("cpu")).fit(train, val)
    assert seen == {dtype}
    assert model[0].weight.dtype == torch.float32
    assert summary["val_accuracy"] > 0.9, summary


@pytest.mark.gpu
def test_cuda_path_uses_amp_and_channels_last(tmp_path):
    """On CUDA a convnet trains in channels_last memory with autocast (bf16/fp16) activations."""
    from dltool.vision.classify import ClassifyTask
    from dltool.vision.models import create_model

    device = torch.device("cuda")
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=3, in_channels=3, width=8)
    seen = {}
    model.features[0].register_forward_hook(lambda m, i, o: seen.update(dtype=o.dtype, input=i[0]))
    pre = {"img_size": 16, "mode": "RGB", "mean": [0.5] * 3, "std": [0.25] * 3}
    task = ClassifyTask("cnn", {}, ["a", "b", "c"], pre, device)
    x = torch.randint(0, 255, (64, 3, 16, 16), dtype=torch.uint8, device=device)
    y = torch.randint(0, 3, (64,), device=device)
    Engine(task, model, EngineConfig(epochs=1), tmp_path, device).fit(TensorBatches((x, y), 16, shuffle=True))
    assert seen["dtype"] in (torch.bfloat16, torch.float16)
    assert seen["input"].is_contiguous(memory_format=torch.channels_last)
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)


class NoPayloadTask:
    monitor, monitor_mode, channels_last = "accuracy", "max", False

    def loss(self, model, batch):
        return model(batch[0]).sum()

    def evaluate(self, model, batches):
        return {"loss": 0.0}


class NoEvaluateTask:
    """A task without validation (as the GAN's): it trains, but refuses validation data before training."""

    monitor, monitor_mode, channels_last = "loss", "last", False
    loss, payload = BlobTask.loss, BlobTask.payload


class HalfStepTask(BlobTask):
    def train_step(self, model, batch, optimize, step):
        return torch.zeros(())


class WrongModeTask(BlobTask):
    monitor_mode = "maximum"


class HalfStateTask(BlobTask):
    def state_dict(self):
        return {"seen": 1}


@pytest.mark.parametrize(("task", "message"), [
    (NoPayloadTask(), "NoPayloadTask is not an engine task: it has no payload"),
    (object(), "object is not an engine task: it has no payload, monitor, monitor_mode, channels_last, "
               "loss (or optimizers and train_step)"),
    (HalfStepTask(), "HalfStepTask is not an engine task: it has no optimizers (it has train_step"),
    (WrongModeTask(), "WrongModeTask.monitor_mode is 'maximum', not one of min|max|last"),
    (HalfStateTask(), "HalfStateTask has state_dict but no load_state_dict"),
])
def test_a_task_missing_part_of_the_protocol_fails_at_construction(tmp_path, task, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        Engine(task, nn.Linear(4, 3), EngineConfig(epochs=1), tmp_path, torch.device("cpu"))
    assert not any(tmp_path.iterdir())  # before any file is written


def test_a_task_that_does_not_inherit_the_hooks_gets_their_defaults(tmp_path):
    """BlobTask inherits nothing: every optional hook comes from TaskHooks, and the run trains."""
    from dltool.core.task import TaskHooks

    engine = Engine(BlobTask(), nn.Linear(4, 3), EngineConfig(epochs=1), tmp_path, torch.device("cpu"))
    assert isinstance(engine.task, TaskHooks) and engine.task.find_unused_parameters is False
    assert engine.task.state_dict() is None and engine.task.end_epoch(None) is None
    assert engine.task.combine_metrics([({"loss": 1.0, "tag": "a"}, 1), ({"loss": 4.0, "tag": "a"}, 3)]) == \
        {"loss": 3.25, "tag": "a"}
    X, y = blobs()
    assert engine.fit(TensorBatches((X, y), 64, shuffle=False))["epochs_run"] == 1


def test_a_task_without_evaluate_trains_only_without_validation_data(tmp_path):
    X, y = blobs()
    with pytest.raises(TypeError, match="NoEvaluateTask has no evaluate: train it without validation data"):
        Engine(NoEvaluateTask(), nn.Linear(4, 3), EngineConfig(epochs=1), tmp_path / "a", torch.device("cpu")).fit(
            TensorBatches((X, y), 64, shuffle=False), TensorBatches((X, y), 64, shuffle=False))
    assert not (tmp_path / "a").exists()
    summary = Engine(NoEvaluateTask(), nn.Linear(4, 3), EngineConfig(epochs=1), tmp_path / "b",
                     torch.device("cpu")).fit(TensorBatches((X, y), 64, shuffle=False))
    assert summary["epochs_run"] == 1 and summary["monitor"] == "train_loss"


def test_every_engine_task_of_dltool_keeps_the_contract():
    """Checked on the classes (no data needed): a task that drifts from the protocol fails here."""
    from dltool.audio.classify import AudioClassifyTask
    from dltool.cluster.deep_net import DeepClusterTask
    from dltool.core.task import check_task
    from dltool.generate.diffusion import DiffusionTask
    from dltool.generate.gan import GANTask
    from dltool.generate.pixelcnn import PixelCNNTask
    from dltool.generate.vae import VAETask
    from dltool.nn.autoencoder import AutoencoderTask
    from dltool.text.classify import TextClassifyTask
    from dltool.text.pretrain import MaskedLMTask
    from dltool.vision.classify import ClassifyTask
    from dltool.vision.detect import DetectTask
    from dltool.vision.segment import SegmentTask

    for cls in (GANTask, VAETask, DiffusionTask, PixelCNNTask, DeepClusterTask, DetectTask, SegmentTask,
                MaskedLMTask, AutoencoderTask, ClassifyTask, AudioClassifyTask, TextClassifyTask):
        check_task(object.__new__(cls))


def test_the_background_writer_of_accelerator_runs_lands_the_same_files(tmp_path):
    """On an accelerator RunFiles writes from CPU snapshots on a thread; the files are those of a CPU run."""
    from dltool.core.checkpoint import RunFiles
    from dltool.core.modelfile import load_checkpoint

    model = nn.Linear(4, 3)
    for sub, device in (("cpu", torch.device("cpu")), ("accel", torch.device("cuda"))):  # only its type is read
        files = RunFiles(tmp_path / sub, device)
        (tmp_path / sub).mkdir()
        payload = BlobTask().payload(model)
        files.save(tmp_path / sub / "best.pt", payload, {"epoch": 1}, {"epoch": 1, "history": [{"epoch": 1}]})
        files.write_history([{"epoch": 1, "train_loss": 0.5}])
        files.check(wait=True)
        assert files.background is (sub == "accel")
    for name in ("best.pt", "metrics.jsonl"):
        assert (tmp_path / "cpu" / name).is_file() and (tmp_path / "accel" / name).is_file()
    a, b = (load_checkpoint(tmp_path / sub / "best.pt") for sub in ("cpu", "accel"))
    assert a["train_state"] == b["train_state"] and torch.equal(a["state_dict"]["weight"], b["state_dict"]["weight"])
    assert (tmp_path / "cpu" / "metrics.jsonl").read_text() == (tmp_path / "accel" / "metrics.jsonl").read_text()
