"""dltool generate vae|gan|diffusion|pixelcnn train, and sample, interpolate, score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    FormatOpt,
    QuietOpt,
    SeedOpt,
    apply_console_options,
)
from dltool.cli.train_options import (
    engine_options,
    task_config,
)

app = typer.Typer(help="Generative models: VAE, GANs, diffusion, PixelCNN; sample, interpolate, score.",
                  no_args_is_help=True)
vae = typer.Typer(help="Convolutional variational autoencoder: train.", no_args_is_help=True)
gan = typer.Typer(help="GANs (DCGAN, conditional, WGAN-GP): train.", no_args_is_help=True)
diffusion = typer.Typer(help="DDPM diffusion with a U-Net: train.", no_args_is_help=True)
pixelcnn = typer.Typer(help="PixelCNN (masked convolutions): train.", no_args_is_help=True)
for _group, _name in ((vae, "vae"), (gan, "gan"), (diffusion, "diffusion"), (pixelcnn, "pixelcnn")):
    app.add_typer(_group, name=_name)

DataArg = Annotated[Path, typer.Argument(help="An image folder: flat, or root/<class>/*.png (labels for cgan). "
                                              "Images are converted to one mode and resized to --img-size.")]
ModelArg = Annotated[Path, typer.Argument(help="A generator's model file (model.pt) or its run folder.")]
ImgSizeOpt = Annotated[int, typer.Option("--img-size", help="Square size every image is resized to (8, 16, 32, 64).")]
SampleEveryOpt = Annotated[int, typer.Option("--sample-every", help="Write a sample grid to OUT/samples/ every N epochs (0: never).")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning instead of failing.")]
LatentDimOpt = Annotated[int, typer.Option("--latent-dim", help="Size of the latent vector z.")]




@vae.command("train")
@engine_options(epochs=30, lr=0.002, without=("early_stop", "val"))
def vae_train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="vae|vae_tiny")] = "vae",
    latent_dim: LatentDimOpt = 16,
    beta: Annotated[float, typer.Option("--beta", help="Weight of the KL term (1: the ELBO; >1: beta-VAE).")] = 1.0,
    img_size: ImgSizeOpt = 16,
    sample_every: SampleEveryOpt = 5,
    skip_bad: SkipBadOpt = False,
    *,
    options: dict,
):
    """Train a convolutional VAE.

    Example: dltool generate vae train sample_data/digits/train --epochs 30 --out runs/vae
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.generate import vae as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@gan.command("train")
@engine_options(epochs=300, lr=0.0002, without=("early_stop", "val_split", "val", "ema"))
def gan_train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="dcgan|dcgan_tiny")] = "dcgan",
    kind: Annotated[str, typer.Option("--kind", help="dcgan|cgan|wgan-gp")] = "dcgan",
    loss: Annotated[str, typer.Option("--loss", help="Generator loss of dcgan/cgan: minimax|nonsaturating.")] = "nonsaturating",
    latent_dim: LatentDimOpt = 32,
    d_steps: Annotated[int, typer.Option("--d-steps", help="Discriminator updates per generator update (wgan-gp: 5 is usual).")] = 1,
    img_size: ImgSizeOpt = 16,
    sample_every: SampleEveryOpt = 5,
    skip_bad: SkipBadOpt = False,
    *,
    options: dict,
):
    """Train a GAN: DCGAN, conditional GAN (labels from class sub-folders) or WGAN-GP.

    Two optimizers (discriminator, generator), both with --optimizer and --lr; Adam uses betas
    (0.5, 0.999), or (0, 0.9) for wgan-gp.

    Example: dltool generate gan train sample_data/digits/train --kind cgan --out runs/cgan
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.generate import gan as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@diffusion.command("train")
# cosine: 50 DDIM steps sample as well as DDPM's 1000, unlike linear's (FD table: README, generative models)
@engine_options(epochs=200, lr=0.001, val_split=0.0, without=("early_stop", "val", "ema"))
def diffusion_train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="unet|unet_tiny")] = "unet",
    timesteps: Annotated[int, typer.Option("--timesteps", help="Diffusion steps T.")] = 1000,
    schedule: Annotated[str, typer.Option("--schedule", help="Noise schedule: linear|cosine.")] = "cosine",
    img_size: ImgSizeOpt = 16,
    sample_every: SampleEveryOpt = 5,
    skip_bad: SkipBadOpt = False,
    *,
    options: dict,
):
    """Train a DDPM diffusion model (U-Net with time embedding, EMA weights).

    Example: dltool generate diffusion train sample_data/digits/train --epochs 60 --out runs/ddpm
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.generate import diffusion as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@pixelcnn.command("train")
@engine_options(epochs=20, lr=0.001, without=("early_stop", "val"))
def pixelcnn_train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="pixelcnn|pixelcnn_tiny")] = "pixelcnn",
    img_size: ImgSizeOpt = 16,
    sample_every: SampleEveryOpt = 5,
    skip_bad: SkipBadOpt = False,
    *,
    options: dict,
):
    """Train a PixelCNN; reports the held-out NLL in bits/dim.

    Example: dltool generate pixelcnn train sample_data/digits/train --epochs 20 --out runs/pixelcnn
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.generate import pixelcnn as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@app.command("sample")
def sample(
    model: ModelArg,
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    grid: Annotated[Path | None, typer.Option("--grid", help="Write the samples as one grid PNG.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write one PNG per sample into this folder.")] = None,
    label: Annotated[str | None, typer.Option("--class", help="Conditional models: every sample of this class (default: the classes in turn).")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="Diffusion: ddpm (all T steps) or ddim (--steps, default 50).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Diffusion with --sampler ddim: denoising steps.")] = None,
    nrow: Annotated[int, typer.Option("--nrow", help="Images per grid row.")] = 8,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Samples drawn at once.")] = 256,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Draw samples from a trained generator.

    Example: dltool generate sample runs/ddpm/model.pt -n 100 --sampler ddim --steps 50 --grid ddim.png
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.generate import sampling

    emit_object(sampling.sample(model, n=n, grid=grid, out=out, label=label, sampler=sampler, steps=steps, seed=seed,
                                batch_size=batch_size, nrow=nrow, device=device), fmt)


@app.command("interpolate")
def interpolate(
    model: ModelArg,
    grid: Annotated[Path, typer.Option("--grid", help="The grid PNG to write (a row per pair of end points).")],
    steps: Annotated[int, typer.Option("--steps", help="Images per row, the two ends included.")] = 10,
    rows: Annotated[int, typer.Option("--rows", help="Pairs of random latent end points.")] = 8,
    label: Annotated[str | None, typer.Option("--class", help="Conditional GANs: the class of every row (default: in turn).")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Interpolate linearly in the latent space of a VAE or GAN.

    Example: dltool generate interpolate runs/vae/model.pt --steps 10 --grid interp.png
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.generate import sampling

    emit_object(sampling.interpolate(model, grid=grid, steps=steps, rows=rows, label=label, seed=seed, device=device),
                fmt)


@app.command("score")
def score(
    samples: Annotated[Path, typer.Argument(help="Folder of samples (flat, or <class>/ sub-folders for class accuracy).")],
    real: Annotated[Path, typer.Argument(help="Folder of real images (flat or <class>/ sub-folders).")],
    classifier: Annotated[Path, typer.Option("--classifier", help="A `dltool vision classify` model: its features and predictions.")],
    inception: Annotated[Path | None, typer.Option("--inception", help="torchvision inception_v3 ImageNet weights (.pth) you have: adds a true FID.")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours for the precision/recall manifolds.")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass.")] = 256,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Score samples against real images: Fréchet distance, confidence, coverage, precision/recall.

    Example: dltool generate score samples/ sample_data/digits/test --classifier runs/digits/model.pt
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    import functools

    from dltool.core.output import emit_object
    from dltool.generate import score as scoring
    from dltool.vision import classify

    emit_object(scoring.score(samples, real, functools.partial(classify.load, classifier), inception=inception, k=k,
                              batch_size=batch_size, device=device), fmt)
