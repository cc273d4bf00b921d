"""dltool vision classify|segment|detect train|eval|predict|export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    FormatOpt,
    OutFileOpt,
    QuietOpt,
    SeedOpt,
    apply_console_options,
)
from dltool.cli.train_options import (
    BackboneLrScaleOpt,
    FreezeBackboneOpt,
    InferNprocOpt,
    PreloadOpt,
    ShardOpt,
    UnfreezeAfterOpt,
    WorkersOpt,
    engine_options,
    task_config,
)

app = typer.Typer(help="Computer vision: classification, segmentation, object detection, style transfer.",
                  no_args_is_help=True)
classify = typer.Typer(help="Image classification: train, pretrain, eval, predict, export; explain, attack, prune.",
                       no_args_is_help=True)
app.add_typer(classify, name="classify")
segment = typer.Typer(help="Semantic segmentation (U-Net, FCN, DeepLab, LR-ASPP): train, eval, predict, export.",
                      no_args_is_help=True)
app.add_typer(segment, name="segment")
detect = typer.Typer(help="Object detection (YOLO-style, Faster R-CNN): train, eval, predict, export.",
                     no_args_is_help=True)
app.add_typer(detect, name="detect")

DataArg = Annotated[Path, typer.Argument(help="ImageFolder (root/<class>/*.png) or CSV with path,label.")]
ModelArg = Annotated[Path, typer.Argument(help="A model file (model.pt) or its run folder.")]
InferBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass.")]


@classify.command("train")
@engine_options(epochs=20, scheduler="onecycle")
def train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="cnn|cnn_tiny|lenet|alexnet|vgg11|googlenet|resnet18|resnet34|resnet50|resnet_tiny|mobilenet_v3_small|mobilenet_v3_tiny")] = "cnn",
    img_size: Annotated[int | None, typer.Option("--img-size", help="Square input size (default: the model's).")] = None,
    augment: Annotated[str | None, typer.Option("--augment", help="Comma-separated ops: flip,rot90,crop,scale,blur,contrast,saturation,gamma,colour.")] = None,
    activation: Annotated[str, typer.Option("--activation", help="cnn only: relu|leaky_relu|prelu|elu|selu|gelu|silu|sigmoid|tanh|softplus|softsign")] = "relu",
    dropout: Annotated[float, typer.Option("--dropout", help="cnn only: dropout before the head.")] = 0.25,
    batch_norm: Annotated[bool, typer.Option("--batch-norm/--no-batch-norm", help="cnn only: batch normalisation.")] = True,
    width: Annotated[int, typer.Option("--width", help="cnn only: channels of the first block (doubles per block).")] = 32,
    pool: Annotated[str, typer.Option("--pool", help="cnn only: the global pooling before the head: avg|max (max: the object is small in the image, e.g. one shape on a textured background).")] = "avg",
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="Start from these weights: a dltool model file or a torchvision state_dict .pth.")] = None,
    freeze_backbone: FreezeBackboneOpt = False,
    unfreeze_after: UnfreezeAfterOpt = 0,
    backbone_lr_scale: BackboneLrScaleOpt = 0.1,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning instead of failing.")] = False,
    workers: WorkersOpt = 2,
    preload: PreloadOpt = None,
    adversarial: Annotated[str | None, typer.Option("--adversarial", help="Adversarial training: fgsm|pgd examples (L-inf, pixels in [0, 1]) replace --adv-ratio of each batch.")] = None,
    adv_eps: Annotated[float, typer.Option("--adv-eps", help="With --adversarial: the attack's eps.")] = 0.03,
    adv_ratio: Annotated[float, typer.Option("--adv-ratio", help="With --adversarial: the share of each batch attacked (1: Madry et al.; 0.5 mixes clean examples in, as Goodfellow et al.).")] = 1.0,
    adv_steps: Annotated[int, typer.Option("--adv-steps", help="With --adversarial pgd: the attack's steps.")] = 7,
    loss: Annotated[str, typer.Option("--loss", help="ce (a class layer) | triplet|contrastive|arcface: metric learning, the network learns an embedding and labels by class centroids (predict --gallery adds classes).")] = "ce",
    embedding_dim: Annotated[int, typer.Option("--embedding-dim", help="Metric losses: the units of the output layer the loss acts on (a projection head); the features beneath it are the embedding that centroids, --gallery and --embed use.")] = 64,
    margin: Annotated[float | None, typer.Option("--margin", help="Metric losses: triplet: the distance margin (default 0.2); contrastive: negatives are pushed this far (default 1); arcface: the angular margin in degrees (default 28.6).")] = None,
    miner: Annotated[str, typer.Option("--miner", help="--loss triplet: which triplets of a batch train: semihard|hard|easy|all (pytorch-metric-learning's TripletMarginMiner) or none.")] = "semihard",
    *,
    options: dict,
):
    """Train an image classifier, or with a metric --loss an embedding for few-shot labelling.

    Example: dltool vision classify train sample_data/digits/train --epochs 20 --out runs/digits
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.vision import classify as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@classify.command("eval")
def evaluate(
    model: ModelArg,
    data: DataArg,
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json, confusion.json and confusion.png here.")] = None,
    gallery: Annotated[Path | None, typer.Option("--gallery", help="Label by the nearest class centroid (cosine) of this folder of labelled examples (root/<class>/*.png or CSV path,label): a new class is a new folder, no retraining.")] = None,
    batch_size: InferBatchOpt = 256,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a classifier: accuracy, macro precision/recall/F1, per-class table, confusion matrix.

    With --gallery, or for a metric-learning model, labels are the nearest class centroids, and
    precision_at_1 and mean_average_precision_at_r rank the gallery's images (without one: the other
    images of DATA) by cosine similarity to each image.

    Example: dltool vision classify eval runs/digits/model.pt sample_data/digits/test
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.classification import EvalConfig
    from dltool.core.output import emit_object
    from dltool.vision import classify as task

    emit_object(task.evaluate(EvalConfig(model=model, data=data, out=out, batch_size=batch_size, device=device,
                                         skip_bad=skip_bad), gallery=gallery), fmt)


@classify.command("predict")
def predict(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Image files or folders; '-' or nothing: paths on stdin.")] = None,
    output: OutFileOpt = "-",
    topk: Annotated[int, typer.Option("--topk", help="How many ranked classes to list per image.")] = 3,
    embed: Annotated[bool, typer.Option("--embed", help="Write penultimate-layer features (the embedding --gallery compares) as a feature table instead.")] = False,
    gallery: Annotated[Path | None, typer.Option("--gallery", help="Label by the nearest class centroid (cosine) of this folder of labelled examples (root/<class>/*.png or CSV path,label): a new class is a new folder, no retraining.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="With --gallery or a metric model: label 'unknown' beyond this cosine distance (1 - similarity) to the nearest centroid.")] = None,
    batch_size: InferBatchOpt = 256,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Predict labels as JSON Lines {path,label,score,topk}, or features with --embed.

    With --gallery, or for a metric-learning model, score is the cosine similarity to the nearest class
    centroid and each line has its distance (1 - score).

    Example: dltool vision classify predict runs/digits/model.pt sample_data/digits/test > preds.jsonl
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output if embed else None)
    from dltool.core.classification import PredictConfig
    from dltool.core.inputs import parse_shard
    from dltool.core.output import write_predictions
    from dltool.vision import classify as task

    cfg = PredictConfig(model=model, inputs=tuple(inputs or ["-"]), topk=topk, embed=embed, batch_size=batch_size,
                        device=device, skip_bad=skip_bad, shard=parse_shard(shard))
    write_predictions(task.predict(cfg, gallery=gallery, threshold=threshold), output, fmt)


@classify.command("export")
def export(
    model: ModelArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="model.onnx or model.ts (TorchScript); format from the suffix.")],
    export_format: Annotated[str, typer.Option("--to", help="auto|onnx|torchscript")] = "auto",
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Export a classifier to ONNX or TorchScript for serving outside dltool.

    The model is traced on --device. ONNX files run anywhere; a TorchScript file keeps that device
    (load it with torch.jit.load(path, map_location="cpu") to move it).

    Example: dltool vision classify export runs/digits/model.pt -o digits.onnx --device cpu
    """
    apply_console_options(quiet=quiet)
    from dltool.core.output import emit_object
    from dltool.vision import classify as task

    emit_object(task.export(model, output, export_format, device=device), "auto")


@classify.command("pretrain")
@engine_options(epochs=20, scheduler="onecycle", without=("val",))
def pretrain(
    data: Annotated[Path, typer.Argument(help="Unlabelled images: a folder (searched recursively; class folders are ignored as labels).")],
    pretext: Annotated[str, typer.Option("--pretext", help="The self-supervised task: rotation (predict 0/90/180/270 degrees).")] = "rotation",
    model: Annotated[str, typer.Option("--model", "-m", help="As for train: the network to pretrain (train --pretrained takes the same --model).")] = "cnn",
    img_size: Annotated[int | None, typer.Option("--img-size", help="Square input size (default: the model's, within the images' own).")] = None,
    activation: Annotated[str, typer.Option("--activation", help="cnn only: as for train.")] = "relu",
    dropout: Annotated[float, typer.Option("--dropout", help="cnn only: dropout before the head.")] = 0.25,
    batch_norm: Annotated[bool, typer.Option("--batch-norm/--no-batch-norm", help="cnn only: batch normalisation.")] = True,
    width: Annotated[int, typer.Option("--width", help="cnn only: channels of the first block.")] = 32,
    pool: Annotated[str, typer.Option("--pool", help="cnn only: as for train (avg|max).")] = "avg",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning instead of failing.")] = False,
    *,
    options: dict,
):
    """Pretrain a network without labels on a pretext task, to start `train --pretrained` from.

    rotation: each image is shown at 0, 90, 180 and 270 degrees and the network learns the angle
    (--batch-size counts images; a step sees each in its four rotations). The images are held in memory.

    Example: dltool vision classify pretrain sample_data/digits/train --pretext rotation --out runs/rot && dltool vision classify train labelled/ --pretrained runs/rot/model.pt
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.vision import pretext as task

    emit_object(task.train(task_config(task.PretrainConfig, options)), options["fmt"])


# -- classify: explain, attack, prune (look inside and harden a trained classifier) ---------------------

@classify.command("explain")
def explain(
    ctx: typer.Context,
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Image files or folders (class folders give --target true); '-' or nothing: paths on stdin.")] = None,
    method: Annotated[str, typer.Option("--method", help="gradcam|gradcam++|saliency|integrated-gradients|occlusion")] = "gradcam",
    target: Annotated[str, typer.Option("--target", help="The class explained: predicted, true (the class folder), or a class name.")] = "predicted",
    layer: Annotated[str | None, typer.Option("--layer", help="gradcam(++) only: the layer to explain at (default: the last feature map at least 7x7, or as large as the input).")] = None,
    ig_steps: Annotated[int, typer.Option("--ig-steps", help="integrated-gradients only: steps of the path integral.")] = 32,
    out: Annotated[Path | None, typer.Option("--out", help="Write OUT/<name>.png (map over the image) and OUT/<name>.npy (the raw map) per input.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Print faithfulness figures instead: deletion and insertion AUC against a random order.")] = False,
    masks: Annotated[Path | None, typer.Option("--masks", help="With --check: object masks mirroring the inputs' tree (nonzero = object), for the pointing game.")] = None,
    batch_size: InferBatchOpt = 32,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Explain a classifier's decisions: an attribution map per image (Captum), as overlay PNG and .npy.

    One JSON line per image {path, label, score, target, map, overlay}; with --check, one JSON object of
    deletion / insertion AUC (lower / higher than the random order's is faithful) and, with --masks, the
    pointing game (share of maps whose maximum lies on the object).

    Example: dltool vision classify explain runs/digits/model.pt sample_data/digits/test --method gradcam --out maps/
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.cli.options import given_options
    from dltool.vision import classify as task
    from dltool.vision import explain as ex

    cfg = ex.ExplainConfig(model=model, inputs=tuple(inputs or ["-"]), method=method, target=target, layer=layer,
                           ig_steps=ig_steps, out=out, check=check, masks=masks, batch_size=batch_size, seed=seed,
                           device=device, skip_bad=skip_bad, given=given_options(ctx))
    result = ex.explain(cfg, load=task.load, scan=task.scan, decode=task.decode)
    if check:
        from dltool.core.output import emit_object

        emit_object(result, fmt)
    else:
        from dltool.core.output import write_records

        write_records(result, "-", fmt)


@classify.command("attack")
def attack(
    ctx: typer.Context,
    model: ModelArg,
    data: DataArg,
    method: Annotated[str, typer.Option("--method", help="fgsm|pgd")] = "pgd",
    eps: Annotated[str, typer.Option("--eps", help="Perturbation budgets, comma-separated, in pixel units of [0, 1] images (a curve with several).")] = "0.1",
    norm: Annotated[str, typer.Option("--norm", help="linf|l2: the ball eps measures.")] = "linf",
    steps: Annotated[int, typer.Option("--steps", help="pgd only: gradient steps.")] = 10,
    alpha: Annotated[float | None, typer.Option("--alpha", help="pgd only: step size (default 2.5 x eps / steps).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw accuracy against eps to this PNG.")] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Write the adversarial images (PNG at the model's input size, same names) here; one sub-folder per eps when several.")] = None,
    batch_size: InferBatchOpt = 256,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Attack a classifier with adversarial examples (FGSM, PGD): its accuracy under each --eps.

    Prints one JSON object {clean_accuracy, eps: [...], adversarial_accuracy: [...]}.

    Example: dltool vision classify attack runs/digits/model.pt sample_data/digits/test --eps 0.02,0.05,0.1 --plot attack.png
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.cli.options import given_options
    from dltool.core.output import emit_object
    from dltool.vision import attack as at
    from dltool.vision import classify as task

    cfg = at.AttackConfig(model=model, data=data, method=method, eps=at.parse_eps(eps), steps=steps, alpha=alpha,
                          norm=norm, plot=plot, save=save, batch_size=batch_size, seed=seed, device=device,
                          skip_bad=skip_bad, given=given_options(ctx))
    emit_object(at.attack(cfg, load=task.load, scan=task.scan_labelled, decode=task.decode), fmt)


@classify.command("prune")
@engine_options(epochs=5, lr=0.0005, scheduler="cosine", without=("init",))
def prune(
    model: ModelArg,
    data: Annotated[Path | None, typer.Argument(help="Labelled data to fine-tune on (class folders or CSV path,label); default: the data in the model's run config.toml.")] = None,
    amount: Annotated[float, typer.Option("--amount", help="Share of the weights to remove, in (0, 1): all conv and linear weights ranked together by magnitude, or with --structured each conv's output channels by L2 norm.")] = 0.8,
    structured: Annotated[bool, typer.Option("--structured", help="Remove whole output channels of each convolution instead of single weights.")] = False,
    schedule: Annotated[int, typer.Option("--schedule", help="Prune in this many steps over the epochs (iterative pruning, a cubic ramp); 1: once, then fine-tune.")] = 1,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning instead of failing.")] = False,
    *,
    options: dict,
):
    """Prune a classifier by weight magnitude (torch.nn.utils.prune), fine-tune it, make it permanent.

    OUT/model.pt records the sparsity (eval prints it); OUT/prune.json and stdout report parameters, zero
    share, file sizes (dense, compressed, sparse) and CPU time before and after.

    Example: dltool vision classify prune runs/digits/model.pt sample_data/digits/train --amount 0.8 --epochs 5 --out runs/digits-pruned
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.vision import prune as task

    emit_object(task.train(task_config(task.PruneConfig, options)), options["fmt"])


# -- segment ---------------------------------------------------------------------------------------

SegDataArg = Annotated[Path, typer.Argument(help="A folder with images/*.png|jpg and masks/*.png (class ids, same stems), optional classes.txt.")]
TileOpt = Annotated[int | None, typer.Option("--tile", help="Images larger than this are predicted in overlapping tiles of this side (default: the training size).")]


@segment.command("train")
# 150 epochs of ce+dice with rot90 on every image: the shapes set's best test mean IoU (README, segmentation)
@engine_options(epochs=150, batch_size=16, lr=0.003, scheduler="onecycle", val_split=0.0)
def segment_train(
    data: SegDataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="unet|unet_tiny|fcn_resnet50|deeplabv3_resnet50|deeplabv3_mobilenet_v3_large|lraspp_mobilenet_v3_large|lraspp_mobilenet_v3_tiny")] = "unet",
    img_size: Annotated[int | None, typer.Option("--img-size", help="Square training size (default: the data's own, within the model's range).")] = None,
    resize: Annotated[int, typer.Option("--resize", help="Resize each image so its shorter side is this many pixels (aspect kept) for training, eval and predict; masks come back at the image's own size. 0: the images' own size. Planned: shrunk until a typical object fits in a patch.")] = 0,
    augment: Annotated[str | None, typer.Option("--augment", help="Comma-separated ops; flip, rot90 and crop move image and mask alike, blur,contrast,saturation,gamma,colour change the image only.")] = "flip,rot90,crop,contrast",
    width: Annotated[int, typer.Option("--width", help="unet only: channels of the first level (doubles per level).")] = 16,
    depth: Annotated[int, typer.Option("--depth", help="unet only: downsampling levels.")] = 3,
    dropout: Annotated[float, typer.Option("--dropout", help="unet only: dropout at the bottleneck.")] = 0.1,
    batch_norm: Annotated[bool, typer.Option("--batch-norm/--no-batch-norm", help="unet only: batch normalisation.")] = True,
    loss: Annotated[str, typer.Option("--loss", help="ce|dice|ce+dice|focal (ce+dice: nnU-Net's default).")] = "ce+dice",
    class_weights: Annotated[str | None, typer.Option("--class-weights", help="auto: weigh classes by inverse pixel frequency (for rare classes).")] = None,
    ignore_index: Annotated[int | None, typer.Option("--ignore-index", help="Mask value of pixels that count for nothing (e.g. 255 for 'void').")] = None,
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="Start from these weights: a dltool model file or a torchvision state_dict .pth.")] = None,
    freeze_backbone: FreezeBackboneOpt = False,
    unfreeze_after: UnfreezeAfterOpt = 0,
    backbone_lr_scale: BackboneLrScaleOpt = 0.1,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images or masks with a warning instead of failing.")] = False,
    *,
    options: dict,
):
    """Train a segmenter. The data is held in memory (up to 2 GiB decoded).

    Example: dltool vision segment train sample_data/shapes/train --out runs/shapes
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.vision import segment as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@segment.command("eval")
def segment_eval(
    model: ModelArg,
    data: SegDataArg,
    tile: TileOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json here.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images or masks with a warning.")] = False,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a segmenter: pixel accuracy, per-class and mean IoU, Dice, confusion matrix.

    Each image is evaluated at its own size.

    Example: dltool vision segment eval runs/shapes/model.pt sample_data/shapes/test
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.vision import segment as task

    emit_object(task.evaluate(task.EvalConfig(model=model, data=data, tile=tile, out=out, device=device,
                                              skip_bad=skip_bad)), fmt)


@segment.command("predict")
def segment_predict(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Image files or folders (DIR/images for a segmentation folder); '-' or nothing: paths on stdin.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for masks/*.png (class ids) and colour/*.png (palette).")] = ...,
    output: OutFileOpt = "-",
    tile: TileOpt = None,
    save_vis: Annotated[Path | None, typer.Option("--save-vis", help="Also write the masks overlaid on the images here.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Predict masks; JSON Lines {path, mask, colour, classes: {name: pixel share}} on stdout.

    Example: dltool vision segment predict runs/shapes/model.pt sample_data/shapes/test --out preds/ > preds.jsonl
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.inputs import parse_shard
    from dltool.core.output import write_predictions
    from dltool.vision import segment as task

    cfg = task.PredictConfig(model=model, out=out, inputs=tuple(inputs or ["-"]), tile=tile, save_vis=save_vis,
                             device=device, skip_bad=skip_bad, shard=parse_shard(shard))
    write_predictions(task.predict(cfg), output, fmt)


@segment.command("export")
def segment_export(
    model: ModelArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="model.onnx")],
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Export a segmenter to ONNX: float images in [0, 1] at the training size -> logits.

    Example: dltool vision segment export runs/shapes/model.pt -o shapes.onnx --device cpu
    """
    apply_console_options(quiet=quiet)
    from dltool.core.output import emit_object
    from dltool.vision import segment as task

    emit_object(task.export(model, output, device=device), "auto")


# -- detect ----------------------------------------------------------------------------------------

DetDataArg = Annotated[Path, typer.Argument(help="A split folder: YOLO (images/ + labels/*.txt), VOC (JPEGImages/ + Annotations/*.xml), or images for --coco.")]
DetClassesOpt = Annotated[str | None, typer.Option("--classes", help="Class names a,b,c (YOLO ids / VOC names); default: data.yaml, classes.txt, or the data's own.")]
CocoOpt = Annotated[Path | None, typer.Option("--coco", help="COCO instances.json; its file names are relative to DATA.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="VOC: read the image list ImageSets/Main/NAME.txt.")]
ConfOpt = Annotated[float, typer.Option("--conf", help="Keep detections scoring at least this.")]
IouOpt = Annotated[float | None, typer.Option("--iou", help="NMS IoU threshold (default: the model's, 0.6).")]
DetSkipOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images and bad label lines with a warning instead of failing.")]


# 250 epochs on every image: the shapes set's best test mAP@0.5 (the figures: README, Detect)
@detect.command("train")
@engine_options(epochs=250, batch_size=8, lr=0.004, optimizer="adamw", scheduler="onecycle", weight_decay=0.0005,
                clip_norm=10.0, val_split=0.0)
def detect_train(
    data: DetDataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="yolo|yolo_tiny|fasterrcnn|fasterrcnn_tiny|maskrcnn|maskrcnn_tiny (maskrcnn: instance masks from --coco segmentations).")] = "yolo",
    scale: Annotated[str, typer.Option("--scale", help="yolo only: model size n|s|m (Ultralytics' scales).")] = "n",
    backbone: Annotated[str | None, typer.Option("--backbone", help="yolo: cnn|resnet18|resnet34|resnet50|mobilenet_v3_small|mobilenet_v3_large; fasterrcnn, maskrcnn: mobilenet_v3_large_fpn|resnet50_fpn.")] = None,
    strides: Annotated[str | None, typer.Option("--strides", help="yolo only: the pyramid's strides, e.g. 8,16,32 or 4,8,16 (default: 4,8,16 when a tenth of the boxes are under 32 px letterboxed, else 8,16,32).")] = None,
    img_size: Annotated[int | None, typer.Option("--img-size", help="Letterbox size, a multiple of 32 (default: the images' median longer side, rounded up, within the model's range: small images are upscaled to 128).")] = None,
    augment: Annotated[str | None, typer.Option("--augment", help="Comma-separated ops: flip,rot90,scale,mosaic move image and boxes alike (masks too, but mosaic), blur,contrast,saturation,gamma,colour change the image only (maskrcnn's default: flip,scale,colour).")] = "flip,scale,colour,mosaic",
    classes: DetClassesOpt = None,
    coco: CocoOpt = None,
    split: SplitOpt = None,
    iou: Annotated[float, typer.Option("--iou", help="NMS IoU threshold for validation; saved with the model.")] = 0.6,
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="Start from these weights: a dltool model file, torchvision's Faster/Mask R-CNN state_dict, or for yolo --backbone the torchvision network's.")] = None,
    freeze_backbone: FreezeBackboneOpt = False,
    unfreeze_after: UnfreezeAfterOpt = 0,
    backbone_lr_scale: BackboneLrScaleOpt = 0.1,
    skip_bad: DetSkipOpt = False,
    *,
    options: dict,
):
    """Train a detector. The data is held in memory (up to 2 GiB).

    Every image trains by default; with --val-split or --val, validation mAP@0.5 picks the best epoch.

    Example: dltool vision detect train sample_data/shapes/train --out runs/shapes-detect
    """
    apply_console_options(quiet=options["quiet"], fmt=options["fmt"])
    from dltool.core.output import emit_object
    from dltool.vision import detect as task

    emit_object(task.train(task_config(task.TrainConfig, options)), options["fmt"])


@detect.command("eval")
def detect_eval(
    model: ModelArg,
    data: DetDataArg,
    conf: ConfOpt = 0.25,
    iou: IouOpt = None,
    classes: DetClassesOpt = None,
    coco: CocoOpt = None,
    split: SplitOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write metrics.json, pr_curve.png and confusion.png here.")] = None,
    batch_size: InferBatchOpt = 32,
    skip_bad: DetSkipOpt = False,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Evaluate a detector: COCO mAP@0.5 and mAP@0.5:0.95, per-class AP, precision and recall at --conf.

    A mask model (maskrcnn) also reports the masks' mAP (mask_map50, mask_map: COCO's segm evaluation).

    Example: dltool vision detect eval runs/shapes-detect/model.pt sample_data/shapes/test
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.vision import detect as task

    emit_object(task.evaluate(task.EvalConfig(model=model, data=data, conf=conf, iou=iou, out=out, batch_size=batch_size,
                                              classes=classes, coco=coco, split=split, device=device,
                                              skip_bad=skip_bad)), fmt)


@detect.command("predict")
def detect_predict(
    model: ModelArg,
    inputs: Annotated[list[str] | None, typer.Argument(help="Image files or folders (DIR/images of a YOLO folder); '-' or nothing: paths on stdin.")] = None,
    output: OutFileOpt = "-",
    conf: ConfOpt = 0.25,
    iou: IouOpt = None,
    save_vis: Annotated[Path | None, typer.Option("--save-vis", help="Also draw the boxes, labels and scores on the images here.")] = None,
    save_txt: Annotated[Path | None, typer.Option("--save-txt", help="Also write YOLO-format predictions (cls cx cy w h conf) here, one .txt per image.")] = None,
    coco_json: Annotated[Path | None, typer.Option("--coco-json", help="Also write the detections as a COCO results file (masks as RLE `segmentation`).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Mask models: write each instance's mask here as STEM_K.png (255 on it), its path in the box's `mask`.")] = None,
    batch_size: InferBatchOpt = 16,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images with a warning.")] = False,
    shard: ShardOpt = None,
    nproc: InferNprocOpt = 1,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Detect objects in images, as JSON Lines of boxes in the image's pixels.

    Each line is {path, width, height, boxes: [{label, score, box: [x1,y1,x2,y2]}]} (with --out, a mask
    model adds each box's `mask` PNG). Images stream through a batch at a time.

    Example: dltool vision detect predict runs/shapes-detect/model.pt sample_data/shapes/test > boxes.jsonl
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.inputs import parse_shard
    from dltool.core.output import write_predictions
    from dltool.vision import detect as task

    cfg = task.PredictConfig(model=model, inputs=tuple(inputs or ["-"]), conf=conf, iou=iou, batch_size=batch_size,
                             save_vis=save_vis, save_txt=save_txt, coco_json=coco_json, out=out, device=device,
                             skip_bad=skip_bad, shard=parse_shard(shard))
    write_predictions(task.predict(cfg), output, fmt)


@detect.command("export")
def detect_export(
    model: ModelArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="model.onnx")],
    nms: Annotated[bool, typer.Option("--nms", help="Include class-wise NMS: one row per kept detection.")] = False,
    conf: Annotated[float, typer.Option("--conf", help="With --nms: the score threshold built into the graph.")] = 0.25,
    iou: IouOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Export a YOLO detector to ONNX, decoding included.

    The graph takes images in [0, 1] and returns boxes and class scores; with --nms, the kept detections.

    Example: dltool vision detect export runs/shapes-detect/model.pt -o shapes.onnx --nms --device cpu
    """
    apply_console_options(quiet=quiet)
    from dltool.core.output import emit_object
    from dltool.vision import detect as task

    emit_object(task.export(model, output, nms=nms, conf=conf, iou=iou, device=device), "auto")


# `vision stylize` lives in its own module (dltool.cli.vision_stylize)
from dltool.cli import vision_stylize  # noqa: E402

app.command("stylize")(vision_stylize.stylize)
