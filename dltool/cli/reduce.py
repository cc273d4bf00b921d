"""dltool reduce pca|kpca|ica|mds|tsne|rbm|autoencoder|transform|select.

Every command reads its options, builds a config (dltool.reduce.config), calls the domain
(dltool.reduce) and writes the result. Nothing heavy is imported at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import TableArg, TableOptions, apply_console_options, table_options
from dltool.reduce.config import AutoencoderConfig, ReduceConfig, TransformConfig

app = typer.Typer(help="Dimensionality reduction (PCA, kernel PCA, ICA, MDS, t-SNE, RBM, autoencoders), feature selection.",
                  no_args_is_help=True)

NOpt = Annotated[int, typer.Option("-n", "--n-components", help="Number of components.")]
SaveModelOpt = Annotated[Path | None, typer.Option(
    "--save-model", help="Save the fitted reducer (pca, kpca, ica, rbm) as FILE.pt for 'dltool reduce transform'.")]
ColorByOpt = Annotated[str | None, typer.Option(
    "--color-by", help="Column that colours --plot (default: a label, true_label, class or target column).")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the fit's summary as JSON (PCA: variance per component, E(k)).")]


def _reduce_and_write(common: TableOptions, method: str, params: dict, **outputs) -> None:
    """The domain call and the write every fitting command ends with; the options are checked before the
    table is read."""
    from dltool.reduce.reduction import check_config, reduce_table

    config = ReduceConfig(method, params, features=common.features, exclude=common.exclude, dropna=common.dropna,
                          standardize=common.standardize, seed=common.seed, device=common.device, plot=common.plot,
                          given=common.given, **outputs)
    check_config(config)
    _summarize_and_write(reduce_table(common.read(), config), common)


def _summarize_and_write(result, common: TableOptions) -> None:
    from dltool.core.console import info
    from dltool.reduce.reduction import summary_lines

    for line in summary_lines(result.report):
        info(line)
    common.write(result.table)


@app.command("pca")
@table_options(without=("seed",))
def pca(
    n_components: Annotated[int | None, typer.Option("-n", "--n-components", help="Number of components (default 2).")] = None,
    variance: Annotated[float | None, typer.Option(
        "--variance", help="Keep the fewest components whose cumulative share of variance exceeds this (scikit-learn's rule), in (0, 1]; instead of -n.")] = None,
    variance_plot: Annotated[Path | None, typer.Option(
        "--variance-plot", help="Write explained variance per component + cumulative line (PNG).")] = None,
    save_model: SaveModelOpt = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Principal component analysis: exact SVD (scikit-learn on CPU, torch on CUDA).

    Reports the explained variance per component and E(k), the share of variance lost by keeping k.

    Example: dltool reduce pca features.csv --variance 0.95 --report pca.json -o reduced.csv
    """
    if n_components is not None and variance is not None:
        from dltool.core.errors import OptionError

        raise OptionError("-n and --variance both choose the number of components", "give only one of them")
    params = {"n_components": 2 if n_components is None and variance is None else n_components, "variance": variance}
    _reduce_and_write(common, "pca", params, save_model=save_model, report=report, color_by=color_by,
                      variance_plot=variance_plot)


@app.command("kpca")
@table_options()
def kpca(
    n_components: NOpt = 2,
    kernel: Annotated[str, typer.Option("--kernel", help="rbf|poly|sigmoid|cosine|linear")] = "rbf",
    gamma: Annotated[float | None, typer.Option("--gamma", help="Kernel coefficient for rbf, poly, sigmoid (default 1 / features).")] = None,
    degree: Annotated[int, typer.Option("--degree", help="Degree of the poly kernel.")] = 3,
    coef0: Annotated[float, typer.Option("--coef0", help="Constant term of the poly and sigmoid kernels.")] = 1.0,
    save_model: SaveModelOpt = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Kernel PCA (scikit-learn's KernelPCA; CPU). A saved model embeds new rows with 'reduce transform'.

    Example: dltool reduce kpca features.csv --kernel rbf --gamma 0.1 -n 2 --save-model kpca.pt -o kpca.csv
    """
    params = dict(n_components=n_components, kernel=kernel, gamma=gamma, degree=degree, coef0=coef0)
    _reduce_and_write(common, "kpca", params, save_model=save_model, report=report, color_by=color_by)


@app.command("ica")
@table_options()
def ica(
    n_components: NOpt = 2,
    fun: Annotated[str, typer.Option("--fun", help="FastICA contrast function: logcosh|exp|cube")] = "logcosh",
    max_iter: Annotated[int, typer.Option("--max-iter", help="Maximum FastICA iterations.")] = 400,
    save_model: SaveModelOpt = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Independent component analysis (scikit-learn's FastICA; CPU).

    Example: dltool reduce ica signals.csv -n 3 --save-model ica.pt -o sources.csv
    """
    params = dict(n_components=n_components, fun=fun, max_iter=max_iter)
    _reduce_and_write(common, "ica", params, save_model=save_model, report=report, color_by=color_by)


@app.command("mds")
@table_options(without=("seed",))
def mds(
    n_components: NOpt = 2,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Maximum SMACOF iterations.")] = 300,
    save_model: Annotated[Path | None, typer.Option(
        "--save-model", help="Not available: MDS has no transform for new rows (use pca, kpca or ica).")] = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Metric multidimensional scaling (SMACOF from a classical-MDS start; CPU).

    It places only the given rows: it has no transform for new ones, so it cannot be saved.

    Example: dltool reduce mds features.csv -n 2 --plot mds.png -o mds.csv
    """
    params = dict(n_components=n_components, max_iter=max_iter)
    _reduce_and_write(common, "mds", params, save_model=save_model, report=report, color_by=color_by)


@app.command("tsne")
@table_options()
def tsne(
    n_components: NOpt = 2,
    perplexity: Annotated[float, typer.Option("--perplexity", help="Effective number of neighbours (less than the rows).")] = 30.0,
    init: Annotated[str, typer.Option("--init", help="pca|random")] = "pca",
    max_iter: Annotated[int, typer.Option("--max-iter", help="Optimisation iterations, early exaggeration included.")] = 1000,
    save_model: Annotated[Path | None, typer.Option(
        "--save-model", help="Not available: t-SNE has no transform for new rows (use pca, kpca or ica).")] = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """t-SNE embedding (openTSNE when installed, else scikit-learn; CPU).

    It places only the given rows: it has no transform for new ones, so it cannot be saved.

    Example: dltool reduce tsne features.csv --perplexity 30 --plot tsne.png -o tsne.csv
    """
    params = dict(n_components=n_components, perplexity=perplexity, init=init, max_iter=max_iter)
    _reduce_and_write(common, "tsne", params, save_model=save_model, report=report, color_by=color_by)


@app.command("transform")
@table_options(without=("standardize", "features", "exclude", "seed"))
def transform(
    model: Annotated[Path, typer.Argument(help="A model file saved with --save-model (pca, kpca, ica, rbm), or an autoencoder run's model.pt.")],
    table: TableArg,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Embed new rows with a saved reducer; the table needs the feature columns it was fitted on.

    Example: dltool reduce transform pca.pt new_features.csv -o new_reduced.csv
    """
    from dltool.reduce.reduction import transform_table

    config = TransformConfig(model=model, dropna=common.dropna, device=common.device, plot=common.plot,
                             color_by=color_by)
    _summarize_and_write(transform_table(common.read(), config), common)


@app.command("select")
@table_options(without=("plot", "standardize"))
def select(
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict (class labels or numbers).")],
    method: Annotated[str, typer.Option(
        "--method", "-m", help="pearson|spearman|chi2|mi|anova (filters), sfs|sbe|permutation|genetic (wrappers), "
                               "rfe|forest|l1 (embedded), hybrid.")] = "anova",
    k: Annotated[int | None, typer.Option("--k", "-k", help="Keep the top k features (subset methods: the subset size; default half).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Keep features scoring at least this (scored methods).")] = None,
    elbow: Annotated[bool, typer.Option("--elbow", help="Cut the sorted score curve at its elbow (the default for scored methods but l1).")] = False,
    task: Annotated[str, typer.Option("--task", help="auto|classification|regression (auto: classification for text or <= 20 integer values).")] = "auto",
    estimator: Annotated[str, typer.Option("--estimator", help="Wrappers' model: auto|linear|svm|forest|knn (auto: logistic / ridge).")] = "auto",
    cv: Annotated[int, typer.Option("--cv", help="Cross-validation folds for sfs, sbe, genetic, hybrid (and l1's LassoCV on a numeric target).")] = 5,
    generations: Annotated[int, typer.Option("--generations", help="genetic: generations.")] = 20,
    population: Annotated[int, typer.Option("--population", help="genetic: individuals per generation.")] = 30,
    penalty: Annotated[float, typer.Option("--penalty", help="genetic: fitness cost per kept feature (fitness = CV score - penalty x features).")] = 0.01,
    pre_k: Annotated[int | None, typer.Option("--pre-k", help="hybrid: features the filter keeps before sfs (default 2k).")] = None,
    filter_method: Annotated[str, typer.Option("--filter", help="hybrid: the filter, pearson|spearman|chi2|mi|anova.")] = "anova",
    n_repeats: Annotated[int, typer.Option("--n-repeats", help="permutation: shuffles per feature.")] = 10,
    alpha: Annotated[float | None, typer.Option("--alpha", help="l1: regularisation strength (default: C=1 for classes, LassoCV for numbers).")] = None,
    ranking: Annotated[Path | None, typer.Option("--ranking", help="Write {feature, score, rank, selected} per feature (.jsonl, .csv or .json).")] = None,
    *,
    common: TableOptions,
):
    """Feature selection: rank the feature columns against --target and keep the best ones.

    The table of selected features (with the target and pass-through columns) goes to stdout or -o;
    the ranking to stderr and --ranking. chi2 min-max scales the features to [0, 1] first (it
    needs non-negative values). --elbow cuts the sorted score curve at its point farthest from the
    chord joining its ends. Wrappers standardize the features for their estimator; the output
    keeps the original values.

    Example: dltool reduce select features.csv --target label --method mi --k 10 --ranking rank.csv -o selected.csv
    """
    from dltool.core.console import info
    from dltool.reduce import select as sel

    cfg = sel.SelectConfig(method=method, target=target, k=k, threshold=threshold, elbow=elbow, task=task,
                           estimator=estimator, cv=cv, generations=generations, population=population,
                           penalty=penalty, pre_k=pre_k, filter_method=filter_method, n_repeats=n_repeats,
                           alpha=alpha, features=common.features, exclude=common.exclude, dropna=common.dropna,
                           seed=common.seed, device=common.device, ranking_path=ranking, given=common.given)
    cfg.validate()
    result = sel.select_table(common.read(), cfg)
    for line in sel.summary_lines(result):
        info(line)
    common.write(result.table)


@app.command("rbm")
@table_options(without=("standardize",))
def rbm(
    n_components: Annotated[int | None, typer.Option(
        "-n", "--n-components", "--components", help="Hidden units: the number of output columns rbm1..rbmN (default 256).")] = None,
    layers: Annotated[str | None, typer.Option(
        "--layers", help="A deep belief network: hidden sizes of greedily stacked RBMs, e.g. 256,64 (the last gives the columns).")] = None,
    cd_k: Annotated[int, typer.Option("--cd-k", help="Gibbs steps per update of contrastive divergence (CD-k).")] = 1,
    persistent: Annotated[bool, typer.Option(
        "--persistent", help="Persistent CD: continue the Gibbs chain across batches (scikit-learn's BernoulliRBM).")] = False,
    lr: Annotated[float, typer.Option("--lr", help="SGD learning rate.")] = 0.1,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the rows (per layer).")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per update.")] = 10,
    scale: Annotated[bool, typer.Option(
        "--scale", help="Min-max scale each column to [0, 1] first (saved with the model); without it values outside [0, 1] are refused.")] = False,
    sample: Annotated[Path | None, typer.Option(
        "--sample", help="Write a PNG grid of images drawn by Gibbs sampling (the features must be a square image's pixels).")] = None,
    sample_count: Annotated[int, typer.Option("--sample-count", help="With --sample: images to draw.")] = 64,
    gibbs_steps: Annotated[int, typer.Option("--gibbs-steps", help="With --sample: Gibbs steps per image.")] = 1000,
    save_model: SaveModelOpt = None,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    common: TableOptions,
):
    """Restricted Boltzmann machine: Bernoulli units trained by contrastive divergence (torch, GPU).

    The hidden probabilities become columns rbm1..rbmN, a drop-in for PCA's; inputs must be in [0, 1]
    (or pass --scale). --layers stacks RBMs into a deep belief network; a saved model embeds new rows
    with 'reduce transform'. The pseudo-likelihood per epoch goes to stderr and --report.

    Example: dltool reduce rbm pixels.csv -n 100 --lr 0.06 --epochs 10 --scale --sample rbm.png -o rbm.csv
    """
    from dltool.reduce import rbm as rbm_domain
    from dltool.reduce.reduction import check_config

    rbm_domain.check_sample(sample, sample_count, gibbs_steps, common.given)
    rbm_domain.check_params(n_components=n_components, layers=layers, cd_k=cd_k, learning_rate=lr, epochs=epochs,
                            batch_size=batch_size)
    params = dict(n_components=n_components, layers=layers, cd_k=cd_k, persistent=persistent, learning_rate=lr,
                  epochs=epochs, batch_size=batch_size, scale=scale)
    config = ReduceConfig("rbm", params, features=common.features, exclude=common.exclude, dropna=common.dropna,
                          seed=common.seed, device=common.device, plot=common.plot, given=common.given,
                          save_model=save_model, report=report, color_by=color_by)
    check_config(config)
    result = rbm_domain.reduce_table(common.read(), config, sample=sample, sample_count=sample_count,
                                     gibbs_steps=gibbs_steps)
    _summarize_and_write(result, common)


# ---------------------------------------------------------------- autoencoder (trains on the shared engine)

from dltool.cli.train_options import (  # noqa: E402
    engine_options,
    task_config,
)

_AE = AutoencoderConfig  # the defaults of reduce autoencoder


@app.command("autoencoder")
@engine_options(epochs=50, batch_size=_AE.run.batch_size, val_split=_AE.run.val_split, without=("val",))
@table_options(without=("standardize", "device", "seed", "quiet", "config"))
def autoencoder(
    code_dim: Annotated[int, typer.Option("--code-dim", "-n", "--n-components", help="Code size: the number of output columns ae1..aeK.")] = _AE.code_dim,
    kind: Annotated[str, typer.Option("--kind", help="undercomplete|sparse|denoising|contractive")] = _AE.kind,
    hidden: Annotated[str, typer.Option("--hidden", help="Encoder layer widths, comma-separated (the decoder mirrors them); 'none' for a linear autoencoder.")] = _AE.hidden,
    activation: Annotated[str, typer.Option("--activation", help="relu|leaky_relu|prelu|elu|selu|gelu|silu|sigmoid|tanh|softplus|softsign")] = _AE.activation,
    scaling: Annotated[str, typer.Option("--scaling", help="standard|minmax|none: feature scaling learnt from the table and saved in the model.")] = _AE.scaling,
    sparsity: Annotated[float, typer.Option("--sparsity", help="sparse: weight of the L1 penalty on the code.")] = _AE.sparsity,
    noise: Annotated[float, typer.Option("--noise", help="denoising: Gaussian noise std on the scaled input, or the share of values zeroed with --corruption mask.")] = _AE.noise,
    corruption: Annotated[str, typer.Option("--corruption", help="denoising: gaussian|mask")] = _AE.corruption,
    contractive: Annotated[float, typer.Option("--contractive", help="contractive: weight of the squared Frobenius norm of the encoder's Jacobian.")] = _AE.contractive,
    report: ReportOpt = None,
    color_by: ColorByOpt = None,
    *,
    options: dict,
    common: TableOptions,
):
    """Autoencoder reduction: an MLP encoder/decoder; its code becomes columns ae1..aeK.

    It trains on the scaled features with the shared engine (checkpoints, --resume, --device cuda);
    other columns pass through. The run folder's model.pt embeds new rows with
    'dltool reduce transform', like PCA's.

    Kinds: undercomplete (reconstruction only), sparse (+ --sparsity x L1 of the code), denoising
    (reconstruct from an input corrupted by --noise), contractive (+ --contractive x the squared
    Frobenius norm of the encoder's Jacobian, computed exactly).

    Example: dltool reduce autoencoder features.csv --code-dim 8 --kind denoising --epochs 50 --out runs/ae -o codes.csv
    """
    apply_console_options(quiet=options["quiet"], fmt=common.fmt, table_output=common.output)
    from dltool.reduce import autoencoder as ae

    config = task_config(AutoencoderConfig, options, command_options=("table", "output"),
                         unsaved=("output", "report", "plot"))
    ae.check_config(config)
    _summarize_and_write(ae.reduce_table(common.read(), config), common)
