"""dltool cluster kmeans|kmedians|meanshift|dbscan|hdbscan|gmm|agglomerative|spectral|graph|deep | evaluate | choose-k.

Every command reads its options, builds a config (dltool.cluster.config), calls the domain
(dltool.cluster) and writes the result. Nothing heavy (numpy, sklearn, torch) is imported at module level.
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
    FormatOpt,
    OutFileOpt,
    PlotOpt,
    QuietOpt,
    SeedOpt,
    StandardizeOpt,
    TableArg,
    TableFormatOpt,
    apply_console_options,
    csv_list,
)
from dltool.cluster.config import ChooseKConfig, ClusterConfig, DeepConfig, EvaluateConfig

app = typer.Typer(help="Clustering of feature tables: methods, evaluation, choosing k.", no_args_is_help=True)

KOpt = Annotated[int, typer.Option("--n-clusters", "-k", help="Number of clusters.")]
NInitOpt = Annotated[int, typer.Option("--n-init", help="Restarts from new seeds; the best run is kept.")]
MaxIterOpt = Annotated[int, typer.Option("--max-iter", help="Most iterations per run.")]
TolOpt = Annotated[float, typer.Option("--tol", help="Convergence tolerance.")]
SampleOpt = Annotated[int, typer.Option("--sample", help="Rows for the O(n^2) silhouette (and Dunn index) (0: all).")]


def _cluster_and_write(table: str, config: ClusterConfig, output: str, fmt: str) -> None:
    """The domain call and the write every method command ends with."""
    from dltool.cluster.clustering import cluster_table
    from dltool.core.console import info
    from dltool.core.tables import read_table, write_table

    result = cluster_table(read_table(table), config)
    info(result.summary())
    write_table(result.table, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """k-means with k-means++ initialisation (torch on a GPU).

    Example: dltool cluster kmeans features.csv -k 10 -o clusters.csv --plot clusters.png
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("kmeans", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol, engine=engine), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, seed=seed, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """k-medians: L1 distances and coordinate-wise medians (robust to outliers).

    Example: dltool cluster kmedians features.csv -k 5 -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("kmedians", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, seed=seed, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Mean shift: clusters are the modes of a kernel density estimate; k is found, not given.

    Example: dltool cluster meanshift features.csv --bandwidth 2.0 -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("meanshift", dict(bandwidth=bandwidth, quantile=quantile, bin_seeding=bin_seeding, max_iter=max_iter), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, seed=seed, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """DBSCAN: dense regions become clusters; points in none are noise, labelled -1.

    Example: dltool cluster dbscan features.csv --eps 0.3 --min-samples 10 --standardize -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("dbscan", dict(eps=eps, min_samples=min_samples), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """HDBSCAN: DBSCAN over all radii, keeping the most stable clusters; noise is -1.

    Example: dltool cluster hdbscan features.csv --min-cluster-size 15 -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("hdbscan", dict(min_cluster_size=min_cluster_size, min_samples=min_samples,
                             cluster_selection_epsilon=cluster_selection_epsilon), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Gaussian mixture fitted by EM: soft assignments in prob_0..prob_{k-1}, the likeliest in `cluster`.

    Example: dltool cluster gmm features.csv -k 3 --covariance diag -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("gmm", dict(n_clusters=n_clusters, covariance=covariance, n_init=n_init, max_iter=max_iter, tol=tol,
                         reg_covar=reg_covar), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, seed=seed, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Hierarchical agglomerative clustering, cut by -k or --distance.

    Example: dltool cluster agglomerative features.csv -k 4 --linkage average --dendrogram tree.png -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("agglomerative", dict(n_clusters=n_clusters, distance=distance, linkage=linkage), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, device=device, plot=plot, dendrogram=dendrogram)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Spectral clustering: k-means on the leading eigenvectors of a similarity graph's Laplacian.

    Example: dltool cluster spectral features.csv -k 2 --n-neighbors 10 -o clusters.csv
    """
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("spectral", dict(n_clusters=n_clusters, affinity=affinity, n_neighbors=n_neighbors, gamma=gamma,
                              n_init=n_init), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, seed=seed, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


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
    fmt: TableFormatOpt = "auto",
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
    apply_console_options(quiet=quiet, fmt=fmt, table_output=output)
    config = ClusterConfig("graph", dict(radius=radius, min_size=min_size), features=csv_list(features), exclude=csv_list(exclude),
                           dropna=dropna, standardize=standardize, device=device, plot=plot)
    _cluster_and_write(table, config, output, fmt)


_EVAL = EvaluateConfig  # the defaults of cluster evaluate


@app.command("evaluate")
def evaluate(
    table: TableArg,
    truth: Annotated[str | None, typer.Option("--truth", help="Column of true classes: adds the external metrics.")] = _EVAL.truth,
    labels: Annotated[str, typer.Option("--labels", help="Column of cluster labels (-1 = noise).")] = _EVAL.labels,
    sample: SampleOpt = _EVAL.sample,
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
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.cluster.metrics import evaluate_table
    from dltool.core.output import emit_object
    from dltool.core.tables import read_table

    cfg = EvaluateConfig(labels=labels, truth=truth, sample=sample, features=csv_list(features),
                         exclude=csv_list(exclude), dropna=dropna, seed=seed, device=device)
    emit_object(evaluate_table(read_table(table), cfg), fmt)


_CHOOSE = ChooseKConfig  # the defaults of cluster choose-k


@app.command("choose-k")
def choose_k(
    table: TableArg,
    k: Annotated[str, typer.Option("--k", "-k", help="The ks to try: 2..15, 2-15 or 2,4,8.")] = "2..10",
    method: Annotated[str, typer.Option("--method", help="elbow|silhouette: how the k is chosen.")] = _CHOOSE.method,
    n_init: NInitOpt = _CHOOSE.n_init,
    max_iter: MaxIterOpt = _CHOOSE.max_iter,
    sample: SampleOpt = _CHOOSE.sample,
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
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.cluster.choose_k import choose_k_table, parse_k_range
    from dltool.core.output import emit_object
    from dltool.core.tables import read_table

    cfg = ChooseKConfig(ks=tuple(parse_k_range(k)), method=method, n_init=n_init, max_iter=max_iter, sample=sample,
                        seed=seed, device=device, features=csv_list(features), exclude=csv_list(exclude),
                        dropna=dropna, standardize=standardize, plot=plot)
    emit_object(choose_k_table(read_table(table), cfg), fmt)


# ---------------------------------------------------------------- deep (DEC, trains on the shared engine)

from dltool.cli.train_options import (  # noqa: E402
    engine_options,
    task_config,
)

_DEEP = DeepConfig  # the defaults of cluster deep


@app.command("deep")
@engine_options(batch_size=_DEEP.batch_size, without=("val_split", "val"))
def deep(
    table: TableArg,
    n_clusters: KOpt = _DEEP.n_clusters,
    code_dim: Annotated[int, typer.Option("--code-dim", help="Size of the autoencoder's code, where the clusters live.")] = _DEEP.code_dim,
    hidden: Annotated[str, typer.Option("--hidden", help="Encoder layer widths, comma-separated (the decoder mirrors them).")] = _DEEP.hidden,
    activation: Annotated[str, typer.Option("--activation", help="relu|leaky_relu|prelu|elu|selu|gelu|silu|sigmoid|tanh|softplus|softsign")] = _DEEP.activation,
    scaling: Annotated[str, typer.Option("--scaling", help="minmax|standard|none: feature scaling learnt from the table and saved in the model.")] = _DEEP.scaling,
    pretrain_epochs: Annotated[int, typer.Option("--pretrain-epochs", help="Epochs of autoencoder pretraining (phase 1).")] = _DEEP.pretrain_epochs,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs of the clustering phase (it stops earlier once --tol is met).")] = 100,
    update_interval: Annotated[int, typer.Option("--update-interval", help="Batches between updates of the target distribution (0: every epoch).")] = _DEEP.update_interval,
    tol: Annotated[float, typer.Option("--tol", help="Stop when less than this share of the rows change cluster between target updates.")] = _DEEP.tol,
    alpha: Annotated[float, typer.Option("--alpha", help="Degrees of freedom of the Student-t soft assignment.")] = _DEEP.alpha,
    recon_weight: Annotated[float, typer.Option("--recon-weight", help="Weight of the reconstruction loss beside KL(P||Q) while clustering (0: plain DEC).")] = _DEEP.recon_weight,
    n_init: NInitOpt = _DEEP.n_init,
    output: OutFileOpt = "-",
    plot: PlotOpt = None,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    dropna: DropnaOpt = False,
    fmt: TableFormatOpt = "auto",
    *,
    options: dict,
):
    """Deep embedded clustering (DEC): an autoencoder's codes, clustered and refined jointly.

    Pretrain an MLP autoencoder, k-means on its codes, then refine encoder and centres jointly on
    KL(P||Q) with Student-t soft assignments (shared engine: --device cuda, checkpoints, --resume).
    Writes the table with `cluster` and prob_0..prob_{k-1}; the model goes to the run folder (--out),
    the pretrained autoencoder to its pretrain/ subfolder.

    Example: dltool cluster deep digits.csv -k 10 --exclude label --out runs/dec -o clusters.csv
    """
    apply_console_options(quiet=options["quiet"], fmt=fmt, table_output=output)
    from dltool.cluster import deep as dec
    from dltool.core.console import info
    from dltool.core.tables import read_table, write_table

    result = dec.cluster_table(read_table(table), task_config(DeepConfig, options, command_options=("table", "output"), unsaved=("output", "plot")))
    info(result.summary())
    info(f"model: {result.facts['run_dir']}/model.pt")
    write_table(result.table, output, fmt)
