"""What the four generator families share: the train config's common fields, the run (data, split,
batches, engine), the task's model-file payload and progress grids, and loading a model file back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dltool.core import distributed as dist
from dltool.core import run as runs
from dltool.core.console import info
from dltool.core.errors import InputError, ModelFileError, OptionError
from dltool.core.modelfile import build_network, load_model_file
from dltool.core.run import RunConfig, check_batch_size, recipe
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.generate import data as gdata
from dltool.generate.models import NETWORKS

FAMILIES = ("vae", "gan", "diffusion", "pixelcnn")


def task_name(family: str) -> str:
    return f"generate-{family}"


@dataclass(frozen=True)
class TrainConfig:
    """Options every family takes; each family's config adds its own."""
    data: Path
    engine: EngineConfig
    model: str = ""
    img_size: int = 16
    sample_every: int = 5
    run: RunConfig = RunConfig(val_split=0.0)
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    family = ""          # set by each family's subclass
    conditional = False  # whether training needs class sub-folders

    def validate(self) -> None:
        self.engine.validate()
        entry = NETWORKS.get(self.model)
        if entry.meta["family"] != self.family:
            others = NETWORKS.names(family=self.family)
            raise OptionError(f"--model {self.model} is a {entry.meta['family']} network, not a {self.family} one",
                              f"choose one of: {', '.join(others)}")
        if self.img_size < 8:
            raise OptionError(f"--img-size {self.img_size} must be at least 8")
        check_batch_size(self.run.batch_size, least=2)  # the generators' losses need two samples
        if self.sample_every < 0:
            raise OptionError(f"--sample-every {self.sample_every} must be >= 0 (0: no progress grids)")

    def arch_kwargs(self, in_channels: int, num_classes: int) -> dict:
        """The network builder's keyword arguments (a family adds its own, e.g. latent_dim)."""
        return {"in_channels": in_channels, "img_size": self.img_size}


class GenerativeTask(TaskHooks):
    """The engine task parts all families share (see dltool.core.train). A family supplies the loss or
    train_step, and `sample(model, n, labels, generator)` -> images in [-1, 1] for the progress grids."""

    channels_last = True
    monitor, monitor_mode = "loss", "last"

    def __init__(self, cfg: TrainConfig, arch_kwargs: dict, images: gdata.ImageSet, run_dir: Path, device):
        self.cfg, self.arch_kwargs, self.run_dir, self.device = cfg, arch_kwargs, run_dir, device
        self.classes, self.mode = images.classes, images.mode
        self.epochs_done = 0

    def process(self) -> dict:
        """Settings of the generative process that sampling needs (diffusion's schedule, ...)."""
        return {}

    def payload(self, model) -> dict:
        return {"task": task_name(self.cfg.family), "arch": self.cfg.model, "arch_kwargs": self.arch_kwargs,
                "state_dict": model.state_dict(), "classes": self.classes,
                "preprocess": {"img_size": self.cfg.img_size, "mode": self.mode}, "process": self.process()}

    def end_epoch(self, model) -> None:
        """Every --sample-every epochs, the epoch's grid (see save_grid)."""
        self.epochs_done += 1
        every = self.cfg.sample_every
        if every and self.epochs_done % every == 0:
            self.save_grid(model)
        return None

    def last_grid(self, model) -> None:
        """After training: the last epoch's grid, when --sample-every did not fall on it (a run shorter than
        the interval, or stopped by --time-limit), so every run ends with a picture of what it learnt."""
        if self.cfg.sample_every and self.epochs_done % self.cfg.sample_every:
            self.save_grid(model)

    def save_grid(self, model) -> None:
        """Rank 0 writes samples/epoch_NNN.png (a fixed seed, so grids compare across epochs; its own
        generator, so training's random stream is untouched)."""
        if not dist.is_main():
            return
        was_training = model.training
        model.eval()
        n = 10 * max(1, min(len(self.classes), 10)) if self.classes else 64
        labels = torch.arange(n, device=self.device) % len(self.classes) if self.classes else None
        with torch.inference_mode():
            images = self.sample(model, n, labels, torch.Generator().manual_seed(0))
        model.train(was_training)
        write_grid(images, self.run_dir / "samples" / f"epoch_{self.epochs_done:03d}.png",
                   f"{self.cfg.model} ({self.run_dir.name}), epoch {self.epochs_done}", nrow=10 if self.classes else 8)

    def state_dict(self) -> dict:
        return {"epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict) -> None:
        self.epochs_done = int(state["epochs_done"])


def noise(shape, generator: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from `generator` (the same numbers on every device)."""
    return torch.randn(shape, generator=generator).to(device)


GRID_MIN_WIDTH = 256  # px: small images are enlarged (whole pixels, no smoothing) to at least this


def write_grid(images: torch.Tensor, path: Path, title: str, nrow: int = 8) -> None:
    """Images in [-1, 1] (N, C, S, S) -> one PNG grid under a title line, at least GRID_MIN_WIDTH wide,
    written atomically."""
    from PIL import Image, ImageDraw, ImageFont
    from torchvision.utils import make_grid

    from dltool.core.io import atomic_path

    grid = make_grid(images.float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    array = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if images.shape[1] == 1 else array)
    scale = -(-GRID_MIN_WIDTH // picture.width)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    font_size = max(10, min(16, picture.width // max(1, len(title)) * 2))  # a long title on a narrow grid: smaller
    font = ImageFont.load_default(size=font_size)
    band = font_size + 8
    page = Image.new(picture.mode, (picture.width, picture.height + band), color=255)
    page.paste(picture, (0, band))
    ImageDraw.Draw(page).text((4, 4), title, fill=0, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        page.save(tmp, format="PNG")


def build_model(family: str, arch: str, arch_kwargs: dict) -> torch.nn.Module:
    """The family module's `build_model` when it wraps the network (diffusion adds EMA weights), else the
    registry's network itself."""
    import importlib

    module = importlib.import_module(f"dltool.generate.{family}")
    return getattr(module, "build_model", NETWORKS.create)(arch, **arch_kwargs)


def train(cfg: TrainConfig, make_task, planner=None) -> dict:
    """Load the images, plan what the user did not set (`planner(fingerprint, cfg)` of dltool.core.plan,
    with the fingerprint of dltool.generate.plan), build the network and the family's task
    (`make_task(cfg, arch_kwargs, images, run_dir, device)`), and train on the engine."""
    from dltool.core.data import TensorBatches, stratified_split

    cfg.validate()
    images = gdata.load_images(cfg.data, cfg.img_size, skip_bad=cfg.run.skip_bad)
    plan = None
    if planner is not None:
        from dltool.core.plan import plan_run
        from dltool.generate.plan import fingerprint

        cfg, plan = plan_run(cfg, planner, lambda: fingerprint(images))
    device, run_dir = runs.start(cfg, task_name(cfg.family))
    if cfg.conditional and images.labels is None:
        raise InputError(f"'{cfg.data}' is a flat folder: a conditional model needs class sub-folders",
                         "arrange the images as root/<class>/*.png")
    if cfg.conditional and len(images.classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(images.classes)} class", "a conditional model needs two or more")
    n = len(images.images)
    if n < 2:
        raise InputError(f"'{cfg.data}' has {n} image", "a generator needs at least two images")
    labels = images.labels if images.labels is not None else np.zeros(n, dtype=np.int64)
    tr, va = stratified_split(labels, cfg.run.val_split, cfg.engine.seed)
    num_classes = len(images.classes) if cfg.conditional else 0
    arch_kwargs = cfg.arch_kwargs(images.channels, num_classes)
    model = build_model(cfg.family, cfg.model, arch_kwargs)
    if plan is not None:
        info(plan.line())
    info(f"data: {len(tr)} training images, {0 if va is None else len(va)} validation, "
         f"{len(images.classes) or 'no'} classes, {images.mode} {cfg.img_size}x{cfg.img_size}")

    x = torch.from_numpy(images.images).to(device)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    tr_t, va_t = torch.as_tensor(tr, device=device), None if va is None else torch.as_tensor(va, device=device)
    train_batches = TensorBatches((x[tr_t], y[tr_t]), cfg.run.batch_size, shuffle=True, seed=cfg.engine.seed)
    val_batches = None if va_t is None else TensorBatches((x[va_t], y[va_t]), 256, shuffle=False)
    task = make_task(cfg, arch_kwargs, images, run_dir, device)
    engine = Engine(task, model, cfg.engine, run_dir, device, recipe(cfg))
    summary = engine.fit(train_batches, val_batches)
    if not engine.finished:  # a resumed finished run has its grid
        task.last_grid(model)
    return summary



# -- model files -------------------------------------------------------------------------------

@dataclass
class Loaded:
    family: str
    model: torch.nn.Module
    ckpt: dict

    @property
    def classes(self) -> list[str]:
        return list(self.ckpt["classes"])

    @property
    def conditional(self) -> bool:
        return bool(self.ckpt["arch_kwargs"].get("num_classes"))


def load(path, device, families=FAMILIES) -> Loaded:
    """A generator's model file -> its network on `device`, in eval mode; `families` those accepted."""
    ckpt = load_model_file(path)
    family = str(ckpt.get("task", "")).removeprefix("generate-")
    if family not in families or ckpt.get("task") != task_name(family):
        wanted = " or ".join(task_name(f) for f in families)
        raise ModelFileError(f"'{path}' is a '{ckpt.get('task')}' model, not a {wanted} model",
                             "pass a model trained with dltool generate " + "|".join(families) + " train")
    model = build_network(path, ckpt, lambda arch, kw: build_model(family, arch, kw))
    return Loaded(family, model.to(device).eval(), ckpt)
