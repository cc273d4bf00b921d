"""dltool cluster kmeans|kmedians|meanshift|dbscan|hdbscan|gmm|agglomerative|spectral|graph | evaluate | choose-k.

Each method command only collects its options; `_cluster` runs the shared flow
(read table -> feature matrix -> standardize -> fit -> add columns -> plot -> write).
Nothing heavy (numpy, sklearn, torch, the domain package) is imported at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DropnaOpt,
    ExcludeOpt,
    FeaturesOpt,
    ForceOpt,
    FormatOpt,
    OutFileOpt,
    QuietOpt,
    SeedOpt,
    apply_console_options,
    csv_list,
)

app = typer.Typer(help="Clustering of feature tables: methods, evaluation, choosing k.", no_args_is_help=True)

TableArg = Annotated[str, typer.Argument(help="Feature table: CSV, JSON Lines, .npy or .npz; '-' reads stdin.")]
PlotOpt = Annotated[Path | None, typer.Option(
    "--plot", help="Also write a PNG scatter of the clusters (first two features, or a 2-D PCA).", dir_okay=False)]
StandardizeOpt = Annotated[bool, typer.Option(
    "--standardize", help="Scale each feature to zero mean and unit variance before clustering.")]
KOpt = Annotated[int, typer.Option("--n-clusters", "-k", help="Number of clusters.")]
NInitOpt = Annotated[int, typer.Option("--n-init", help="Restarts from new seeds; the best run is kept.")]
MaxIterOpt = Annotated[int, typer.Option("--max-iter", help="Most iterations per run.")]
TolOpt = Annotated[float, typer.Option("--tol", help="Convergence tolerance.")]

# the options every method command shares, handed to _cluster by name
_FLOW = ("table", "output", "plot", "standardize", "features", "exclude", "dropna", "device", "seed", "fmt",
         "quiet")


def _check_format(fmt: str, output: str | None = None, allowed=("auto", "table", "jsonl", "csv", "json")) -> None:
    """Fail before any work (and before any file is written) on a --format that cannot be honoured."""
    from dltool.core.errors import OptionError, suggest

    if fmt not in allowed:
        raise OptionError(f"--format {fmt} is not one of {'|'.join(allowed)}", suggest(fmt, allowed) or "use auto")
    if fmt == "table" and output not in (None, "-"):
        raise OptionError(f"--format table prints to the terminal and cannot be written to -o {output}",
                          "use --format csv, jsonl, json or npz for a file")


def _cluster(method: str, params: dict, opts: dict, *, dendrogram: Path | None = None) -> None:
    """The flow every method command shares; `opts` holds the _FLOW options (the command's locals())."""
    o = {k: opts[k] for k in _FLOW}
    apply_console_options(quiet=o["quiet"])
    _check_format(o["fmt"], o["output"], allowed=("auto", "table", "jsonl", "csv", "json", "npz"))
    from dltool.cluster import plots, run
    from dltool.core.console import info
    from dltool.core.tables import read_table, write_table

    table = read_table(o["table"])
    X, names, keep = run.select_features(table, csv_list(o["features"]), csv_list(o["exclude"]),
                                         dropna=o["dropna"])
    if o["standardize"]:
        X = run.standardize(X)
    result = run.fit(X, method, params, seed=o["seed"], device=o["device"])
    out = run.annotate(table, keep, result)
    if o["plot"]:
        plots.scatter(X, result.labels, names, o["plot"], title=f"{method}: {result.n_clusters} clusters")
    if dendrogram:
        est = result.estimator
        plots.dendrogram(est.linkage_matrix_, dendrogram, cut=est.cut_height(),
                         title=f"{est.linkage} linkage, cut at {est.n_clusters_} clusters")
    info(result.summary())
    write_table(out, o["output"], o["fmt"])


@app.command("kmeans")
def kmeans(
    table: TableArg,
    n_clusters: KOpt = 8,
    n_init: NInitOpt = 10,
    max_iter: MaxIterOpt = 300,
    tol: TolOpt = 1e-4,
    engine: Annotated[str, typer.Option("--engine", help="auto|torch|sklearn (auto: torch on GPU, scikit-learn on CPU).")] = "auto",
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """k-means with k-means++ initialisation (torch on a GPU).

    Example: dltool cluster kmeans features.csv -k 10 -o clusters.csv --plot clusters.png
    """
    _cluster("kmeans", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol, engine=engine),
             locals())


@app.command("kmedians")
def kmedians(
    table: TableArg,
    n_clusters: KOpt = 8,
    n_init: NInitOpt = 10,
    max_iter: MaxIterOpt = 300,
    tol: TolOpt = 1e-4,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """k-medians: L1 distances and coordinate-wise medians (robust to outliers).

    Example: dltool cluster kmedians features.csv -k 5 -o clusters.csv
    """
    _cluster("kmedians", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol), locals())


@app.command("meanshift")
def meanshift(
    table: TableArg,
    bandwidth: Annotated[float | None, typer.Option("--bandwidth", help="Kernel width (default: estimated from the data).")] = None,
    quantile: Annotated[float, typer.Option("--quantile", help="Neighbour quantile used to estimate the bandwidth.")] = 0.3,
    bin_seeding: Annotated[bool, typer.Option("--bin-seeding", help="Start from a grid of bins instead of every point (faster).")] = False,
    max_iter: MaxIterOpt = 300,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Mean shift: clusters are the modes of a kernel density estimate; k is found, not given.

    Example: dltool cluster meanshift features.csv --bandwidth 2.0 -o clusters.csv
    """
    _cluster("meanshift", dict(bandwidth=bandwidth, quantile=quantile, bin_seeding=bin_seeding, max_iter=max_iter),
             locals())


@app.command("dbscan")
def dbscan(
    table: TableArg,
    eps: Annotated[float, typer.Option("--eps", help="Neighbourhood radius.")] = 0.5,
    min_samples: Annotated[int, typer.Option("--min-samples", help="Neighbours (self included) that make a core point.")] = 5,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """DBSCAN: dense regions become clusters; points in none are noise, labelled -1.

    Example: dltool cluster dbscan features.csv --eps 0.3 --min-samples 10 --standardize -o clusters.csv
    """
    _cluster("dbscan", dict(eps=eps, min_samples=min_samples), locals())


@app.command("hdbscan")
def hdbscan(
    table: TableArg,
    min_cluster_size: Annotated[int, typer.Option("--min-cluster-size", help="Smallest group that counts as a cluster.")] = 5,
    min_samples: Annotated[int | None, typer.Option("--min-samples", help="Neighbours for core distances (default: --min-cluster-size).")] = None,
    cluster_selection_epsilon: Annotated[float, typer.Option("--cluster-selection-epsilon", help="Merge clusters closer than this.")] = 0.0,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """HDBSCAN: DBSCAN over all radii, keeping the most stable clusters; noise is -1.

    Example: dltool cluster hdbscan features.csv --min-cluster-size 15 -o clusters.csv
    """
    _cluster("hdbscan", dict(min_cluster_size=min_cluster_size, min_samples=min_samples,
                             cluster_selection_epsilon=cluster_selection_epsilon), locals())


@app.command("gmm")
def gmm(
    table: TableArg,
    n_clusters: KOpt = 8,
    covariance: Annotated[str, typer.Option("--covariance", help="full|diag|tied|spherical covariance matrices.")] = "full",
    n_init: NInitOpt = 1,
    max_iter: MaxIterOpt = 100,
    tol: TolOpt = 1e-3,
    reg_covar: Annotated[float, typer.Option("--reg-covar", help="Added to covariance diagonals for stability.")] = 1e-6,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Gaussian mixture fitted by EM: soft assignments in prob_0..prob_{k-1}, the likeliest in `cluster`.

    Example: dltool cluster gmm features.csv -k 3 --covariance diag -o clusters.csv
    """
    _cluster("gmm", dict(n_clusters=n_clusters, covariance=covariance, n_init=n_init, max_iter=max_iter, tol=tol,
                         reg_covar=reg_covar), locals())


@app.command("agglomerative")
def agglomerative(
    table: TableArg,
    n_clusters: Annotated[int | None, typer.Option("--n-clusters", "-k", help="Cut the tree into this many clusters.")] = None,
    distance: Annotated[float | None, typer.Option("--distance", help="Or cut it at this merge distance.")] = None,
    linkage: Annotated[str, typer.Option("--linkage", help="single|complete|average|ward")] = "ward",
    dendrogram: Annotated[Path | None, typer.Option("--dendrogram", help="Also write the dendrogram as a PNG.", dir_okay=False)] = None,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Hierarchical agglomerative clustering, cut by -k or --distance.

    Example: dltool cluster agglomerative features.csv -k 4 --linkage average --dendrogram tree.png -o clusters.csv
    """
    _cluster("agglomerative", dict(n_clusters=n_clusters, distance=distance, linkage=linkage), locals(),
             dendrogram=dendrogram)


@app.command("spectral")
def spectral(
    table: TableArg,
    n_clusters: KOpt = 8,
    affinity: Annotated[str, typer.Option("--affinity", help="nearest_neighbors|rbf similarity graph.")] = "nearest_neighbors",
    n_neighbors: Annotated[int, typer.Option("--n-neighbors", help="Neighbours per point (nearest_neighbors).")] = 10,
    gamma: Annotated[float, typer.Option("--gamma", help="RBF kernel coefficient (rbf).")] = 1.0,
    n_init: NInitOpt = 10,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Spectral clustering: k-means on the leading eigenvectors of a similarity graph's Laplacian.

    Example: dltool cluster spectral features.csv -k 2 --n-neighbors 10 -o clusters.csv
    """
    _cluster("spectral", dict(n_clusters=n_clusters, affinity=affinity, n_neighbors=n_neighbors, gamma=gamma,
                              n_init=n_init), locals())


@app.command("graph")
def graph(
    table: TableArg,
    radius: Annotated[float | None, typer.Option("--radius", "-r", help="Link points closer than this; clusters are the connected groups.")] = None,
    min_size: Annotated[int, typer.Option("--min-size", help="Groups smaller than this are noise (-1).")] = 1,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Graph clustering: drop edges longer than --radius, keep the connected components.

    Example: dltool cluster graph features.csv --radius 0.5 --min-size 3 -o clusters.csv
    """
    if radius is None:
        from dltool.core.errors import OptionError

        raise OptionError("graph needs --radius (points closer than it are linked)",
                          "give e.g. --radius 0.5; try --standardize so one radius fits every feature")
    _cluster("graph", dict(radius=radius, min_size=min_size), locals())


@app.command("evaluate")
def evaluate(
    table: TableArg,
    truth: Annotated[str | None, typer.Option("--truth", help="Column of true classes: adds the external metrics.")] = None,
    labels: Annotated[str, typer.Option("--labels", help="Column of cluster labels (-1 = noise).")] = "cluster",
    sample: Annotated[int, typer.Option("--sample", help="Rows for the O(n^2) silhouette and Dunn index (0: all).")] = 10_000,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Score a clustering: internal metrics, and external ones against --truth.

    Internal: silhouette, Calinski-Harabasz, Davies-Bouldin, Dunn, cohesion (within-cluster sum of
    squares), separation (between-cluster sum of squares). External (--truth): Rand, adjusted Rand,
    Jaccard (pair counting), Fowlkes-Mallows, purity, variation of information (nats), NMI.

    Features are the numeric columns other than --labels, --truth and prob_*; noise (-1) is left out of
    the internal metrics and counted as one more label by the external ones. One JSON object.

    Example: dltool cluster evaluate clusters.csv --truth label
    """
    apply_console_options(quiet=quiet)
    from dltool.cluster import metrics
    from dltool.core.device import cpu_only_notice
    from dltool.core.errors import OptionError
    from dltool.core.output import emit_object
    from dltool.core.tables import read_table

    _check_format(fmt)
    cpu_only_notice(device, "cluster evaluate")
    if sample < 0:
        raise OptionError(f"--sample {sample} is negative", "use --sample 0 for all rows, or a row count")
    result = metrics.evaluate_table(read_table(table), labels=labels, truth=truth, features=csv_list(features),
                                    exclude=csv_list(exclude), dropna=dropna, sample=sample or None, seed=seed)
    emit_object(result, fmt)


@app.command("choose-k")
def choose_k(
    table: TableArg,
    k: Annotated[str, typer.Option("--k", "-k", help="The ks to try: 2..15, 2-15 or 2,4,8.")] = "2..10",
    method: Annotated[str, typer.Option("--method", help="elbow|silhouette: how the k is chosen.")] = "elbow",
    n_init: NInitOpt = 10,
    max_iter: MaxIterOpt = 300,
    sample: Annotated[int, typer.Option("--sample", help="Rows for the O(n^2) silhouette (0: all).")] = 10_000,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write inertia and silhouette against k as a PNG.", dir_okay=False)] = None,
    standardize: StandardizeOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Choose k for k-means: inertia and silhouette for each k, the chosen k (elbow or best silhouette).

    Elbow: with both axes scaled to [0, 1], the k whose point is farthest from the straight line
    joining the first and last points of the inertia curve. Prints one JSON object
    {"method", "chosen_k", "scores": [{"k", "inertia", "silhouette"}, ...]}.

    Example: dltool cluster choose-k features.csv --k 2..15 --method silhouette --plot k.png
    """
    apply_console_options(quiet=quiet)
    from dltool.cluster import plots, run
    from dltool.cluster.choose_k import ChooseKConfig, parse_k_range
    from dltool.cluster.choose_k import choose_k as run_choose_k
    from dltool.core.errors import OptionError
    from dltool.core.output import emit_object
    from dltool.core.tables import read_table

    _check_format(fmt)
    if sample < 0:
        raise OptionError(f"--sample {sample} is negative", "use --sample 0 for all rows, or a row count")
    cfg = ChooseKConfig(ks=tuple(parse_k_range(k)), method=method, n_init=n_init, max_iter=max_iter,
                        sample=sample or None, seed=seed, device=device)
    data = read_table(table)
    X, _, _ = run.select_features(data, csv_list(features), csv_list(exclude), dropna=dropna)
    if standardize:
        X = run.standardize(X)
    result = run_choose_k(X, cfg)
    if plot:
        plots.choose_k(result["scores"], result["chosen_k"], method, plot)
    emit_object(result, fmt)


# ---------------------------------------------------------------- deep (DEC, trains on the shared engine)

from dltool.cli.train_options import (  # noqa: E402
    AmpOpt,
    BatchSizeOpt,
    ClipNormOpt,
    ClipValueOpt,
    CompileOpt,
    EarlyStopOpt,
    InitOpt,
    LrOpt,
    OptimizerOpt,
    OutDirOpt,
    ResumeOpt,
    SchedulerOpt,
    TensorboardOpt,
    WeightDecayOpt,
)


@app.command("deep")
def deep(
    table: TableArg,
    n_clusters: KOpt = 8,
    code_dim: Annotated[int, typer.Option("--code-dim", help="Size of the autoencoder's code, where the clusters live.")] = 10,
    hidden: Annotated[str, typer.Option("--hidden", help="Encoder layer widths, comma-separated (the decoder mirrors them).")] = "512,256",
    activation: Annotated[str, typer.Option("--activation", help="relu|leaky_relu|prelu|elu|selu|gelu|silu|sigmoid|tanh|softplus|softsign")] = "relu",
    scaling: Annotated[str, typer.Option("--scaling", help="minmax|standard|none: feature scaling learnt from the table and saved in the model.")] = "minmax",
    pretrain_epochs: Annotated[int, typer.Option("--pretrain-epochs", help="Epochs of autoencoder pretraining (phase 1).")] = 100,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs of the clustering phase (it stops earlier once --tol is met).")] = 100,
    update_interval: Annotated[int, typer.Option("--update-interval", help="Batches between updates of the target distribution (0: every epoch).")] = 0,
    tol: Annotated[float, typer.Option("--tol", help="Stop when less than this share of the rows change cluster between target updates.")] = 1e-3,
    alpha: Annotated[float, typer.Option("--alpha", help="Degrees of freedom of the Student-t soft assignment.")] = 1.0,
    recon_weight: Annotated[float, typer.Option("--recon-weight", help="Weight of the reconstruction loss beside KL(P||Q) while clustering (0: plain DEC).")] = 0.1,
    n_init: NInitOpt = 20,
    batch_size: BatchSizeOpt = 64,
    lr: LrOpt = None,
    optimizer: OptimizerOpt = "adam",
    scheduler: SchedulerOpt = "none",
    weight_decay: WeightDecayOpt = 0.0,
    clip_norm: ClipNormOpt = None,
    clip_value: ClipValueOpt = None,
    init: InitOpt = "default",
    early_stop: EarlyStopOpt = 0,
    out: OutDirOpt = None,
    force: ForceOpt = False,
    resume: ResumeOpt = False,
    tensorboard: TensorboardOpt = False,
    amp: AmpOpt = True,
    compile: CompileOpt = False,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Deep embedded clustering (DEC): an autoencoder's codes, clustered and refined jointly.

    Pretrain an MLP autoencoder, k-means on its codes, then refine encoder and centres jointly on
    KL(P||Q) with Student-t soft assignments (shared engine: --device cuda, checkpoints, --resume).
    Writes the table with `cluster` and prob_0..prob_{k-1}; the model goes to the run folder (--out),
    the pretrained autoencoder to its pretrain/ subfolder.

    Example: dltool cluster deep digits.csv -k 10 --exclude label --out runs/dec -o clusters.csv
    """
    options = dict(locals())
    apply_console_options(quiet=quiet)
    _check_format(fmt, output, allowed=("auto", "table", "jsonl", "csv", "json", "npz"))
    from dltool.cluster import deep as dec
    from dltool.cluster import plots
    from dltool.core.console import info
    from dltool.core.tables import read_table, write_table

    cfg = dec.DeepConfig.from_options(options)
    data = read_table(table)
    out_table, result, X, names = dec.cluster_table(data, cfg)
    if plot:
        plots.scatter(X, result.labels, names, plot, title=f"deep: {result.n_clusters} clusters")
    info(result.summary())
    info(f"model: {result.facts['run_dir']}/model.pt")
    write_table(out_table, output, fmt)
