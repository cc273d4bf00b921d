"""dltool cluster kmeans|kmedians|meanshift|dbscan|hdbscan|gmm|agglomerative|spectral|graph|deep | evaluate | choose-k.

Every command reads its options, builds a config (dltool.cluster.config), calls the domain
(dltool.cluster) and writes the result. Nothing heavy (numpy, sklearn, torch) is imported at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import FormatOpt, TableOptions, apply_console_options, table_options
from dltool.cluster.config import ChooseKConfig, ClusterConfig, DeepConfig, EvaluateConfig

app = typer.Typer(help="Clustering of feature tables: methods, evaluation, choosing k.", no_args_is_help=True)

KOpt = Annotated[int, typer.Option("--n-clusters", "-k", help="Number of clusters.")]
NInitOpt = Annotated[int, typer.Option("--n-init", help="Restarts from new seeds; the best run is kept.")]
MaxIterOpt = Annotated[int, typer.Option("--max-iter", help="Most iterations per run.")]
TolOpt = Annotated[float, typer.Option("--tol", help="Convergence tolerance.")]
SampleOpt = Annotated[int, typer.Option("--sample", help="Rows for the O(n^2) silhouette (and Dunn index) (0: all).")]


def _cluster_and_write(common: TableOptions, method: str, params: dict, **pictures) -> None:
    """The domain call and the write every method command ends with; the options are checked before
    the table is read."""
    from dltool.cluster.clustering import check_config, cluster_table
    from dltool.core.console import info

    config = ClusterConfig(method, params, features=common.features, exclude=common.exclude, dropna=common.dropna,
                           standardize=common.standardize, seed=common.seed, device=common.device, plot=common.plot,
                           given=common.given, **pictures)
    check_config(config)
    result = cluster_table(common.read(), config)
    info(result.summary())
    common.write(result.table)


@app.command("kmeans")
@table_options()
def kmeans(
    n_clusters: KOpt = 8,
    n_init: NInitOpt = 10,
    max_iter: MaxIterOpt = 300,
    tol: TolOpt = 1e-4,
    engine: Annotated[str, typer.Option("--engine", help="auto|torch|sklearn (auto: torch on GPU, scikit-learn on CPU).")] = "auto",
    *,
    common: TableOptions,
):
    """k-means with k-means++ initialisation (torch on a GPU).

    Example: dltool cluster kmeans features.csv -k 10 -o clusters.csv --plot clusters.png
    """
    _cluster_and_write(common, "kmeans", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol, engine=engine))


@app.command("kmedians")
@table_options()
def kmedians(
    n_clusters: KOpt = 8,
    n_init: NInitOpt = 10,
    max_iter: MaxIterOpt = 300,
    tol: TolOpt = 1e-4,
    *,
    common: TableOptions,
):
    """k-medians: L1 distances and coordinate-wise medians (robust to outliers).

    Example: dltool cluster kmedians features.csv -k 5 -o clusters.csv
    """
    _cluster_and_write(common, "kmedians", dict(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, tol=tol))


@app.command("meanshift")
@table_options()
def meanshift(
    bandwidth: Annotated[float | None, typer.Option("--bandwidth", help="Kernel width (default: estimated from the data).")] = None,
    quantile: Annotated[float, typer.Option("--quantile", help="Neighbour quantile used to estimate the bandwidth.")] = 0.3,
    bin_seeding: Annotated[bool, typer.Option("--bin-seeding", help="Start from a grid of bins instead of every point (faster).")] = False,
    max_iter: MaxIterOpt = 300,
    *,
    common: TableOptions,
):
    """Mean shift: clusters are the modes of a kernel density estimate; k is found, not given.

    Example: dltool cluster meanshift features.csv --bandwidth 2.0 -o clusters.csv
    """
    _cluster_and_write(common, "meanshift", dict(bandwidth=bandwidth, quantile=quantile, bin_seeding=bin_seeding, max_iter=max_iter))


@app.command("dbscan")
@table_options(without=("seed",))
def dbscan(
    eps: Annotated[float, typer.Option("--eps", help="Neighbourhood radius.")] = 0.5,
    min_samples: Annotated[int, typer.Option("--min-samples", help="Neighbours (self included) that make a core point.")] = 5,
    *,
    common: TableOptions,
):
    """DBSCAN: dense regions become clusters; points in none are noise, labelled -1.

    Example: dltool cluster dbscan features.csv --eps 0.3 --min-samples 10 --standardize -o clusters.csv
    """
    _cluster_and_write(common, "dbscan", dict(eps=eps, min_samples=min_samples))


@app.command("hdbscan")
@table_options(without=("seed",))
def hdbscan(
    min_cluster_size: Annotated[int, typer.Option("--min-cluster-size", help="Smallest group that counts as a cluster.")] = 5,
    min_samples: Annotated[int | None, typer.Option("--min-samples", help="Neighbours for core distances (default: --min-cluster-size).")] = None,
    cluster_selection_epsilon: Annotated[float, typer.Option("--cluster-selection-epsilon", help="Merge clusters closer than this.")] = 0.0,
    *,
    common: TableOptions,
):
    """HDBSCAN: DBSCAN over all radii, keeping the most stable clusters; noise is -1.

    Example: dltool cluster hdbscan features.csv --min-cluster-size 15 -o clusters.csv
    """
    _cluster_and_write(common, "hdbscan", dict(min_cluster_size=min_cluster_size, min_samples=min_samples,
                                               cluster_selection_epsilon=cluster_selection_epsilon))


@app.command("gmm")
@table_options()
def gmm(
    n_clusters: KOpt = 8,
    covariance: Annotated[str, typer.Option("--covariance", help="full|diag|tied|spherical covariance matrices.")] = "full",
    n_init: NInitOpt = 1,
    max_iter: MaxIterOpt = 100,
    tol: TolOpt = 1e-3,
    reg_covar: Annotated[float, typer.Option("--reg-covar", help="Added to covariance diagonals for stability.")] = 1e-6,
    *,
    common: TableOptions,
):
    """Gaussian mixture fitted by EM: soft assignments in prob_0..prob_{k-1}, the likeliest in `cluster`.

    Example: dltool cluster gmm features.csv -k 3 --covariance diag -o clusters.csv
    """
    _cluster_and_write(common, "gmm", dict(n_clusters=n_clusters, covariance=covariance, n_init=n_init,
                                           max_iter=max_iter, tol=tol, reg_covar=reg_covar))


@app.command("agglomerative")
@table_options(without=("seed",))
def agglomerative(
    n_clusters: Annotated[int | None, typer.Option("--n-clusters", "-k", help="Cut the tree into this many clusters.")] = None,
    distance: Annotated[float | None, typer.Option("--distance", help="Or cut it at this merge distance.")] = None,
    linkage: Annotated[str, typer.Option("--linkage", help="single|complete|average|ward")] = "ward",
    dendrogram: Annotated[Path | None, typer.Option("--dendrogram", help="Also write the dendrogram as a PNG.", dir_okay=False)] = None,
    *,
    common: TableOptions,
):
    """Hierarchical agglomerative clustering, cut by -k or --distance.

    Example: dltool cluster agglomerative features.csv -k 4 --linkage average --dendrogram tree.png -o clusters.csv
    """
    _cluster_and_write(common, "agglomerative", dict(n_clusters=n_clusters, distance=distance, linkage=linkage), dendrogram=dendrogram)


@app.command("spectral")
@table_options()
def spectral(
    n_clusters: KOpt = 8,
    affinity: Annotated[str, typer.Option("--affinity", help="nearest_neighbors|rbf similarity graph.")] = "nearest_neighbors",
    n_neighbors: Annotated[int, typer.Option("--n-neighbors", help="Neighbours per point (nearest_neighbors).")] = 10,
    gamma: Annotated[float, typer.Option("--gamma", help="RBF kernel coefficient (rbf).")] = 1.0,
    n_init: NInitOpt = 10,
    *,
    common: TableOptions,
):
    """Spectral clustering: k-means on the leading eigenvectors of a similarity graph's Laplacian.

    Example: dltool cluster spectral features.csv -k 2 --n-neighbors 10 -o clusters.csv
    """
    _cluster_and_write(common, "spectral", dict(n_clusters=n_clusters, affinity=affinity, n_neighbors=n_neighbors,
                                                gamma=gamma, n_init=n_init))


@app.command("graph")
@table_options(without=("seed",))
def graph(
    radius: Annotated[float | None, typer.Option("--radius", "-r", help="Link points closer than this; clusters are the connected groups.")] = None,
    min_size: Annotated[int, typer.Option("--min-size", help="Groups smaller than this are noise (-1).")] = 1,
    *,
    common: TableOptions,
):
    """Graph clustering: drop edges longer than --radius, keep the connected components.

    Example: dltool cluster graph features.csv --radius 0.5 --min-size 3 -o clusters.csv
    """
    if radius is None:
        from dltool.core.errors import OptionError

        raise OptionError("graph needs --radius (points closer than it are linked)",
                          "give e.g. --radius 0.5; try --standardize so one radius fits every feature")
    _cluster_and_write(common, "graph", dict(radius=radius, min_size=min_size))


_EVAL = EvaluateConfig  # the defaults of cluster evaluate


@app.command("evaluate")
@table_options(without=("output", "plot", "standardize"))
def evaluate(
    truth: Annotated[str | None, typer.Option("--truth", help="Column of true classes: adds the external metrics.")] = _EVAL.truth,
    labels: Annotated[str, typer.Option("--labels", help="Column of cluster labels (-1 = noise).")] = _EVAL.labels,
    sample: SampleOpt = _EVAL.sample,
    fmt: FormatOpt = "auto",
    *,
    common: TableOptions,
):
    """Score a clustering: internal metrics, and external ones against --truth.

    Internal: silhouette, Calinski-Harabasz, Davies-Bouldin, Dunn, cohesion (within-cluster sum of
    squares), separation (between-cluster sum of squares). External (--truth): Rand, adjusted Rand,
    Jaccard (pair counting), Fowlkes-Mallows, purity, variation of information (nats), NMI.

    Features are the numeric columns other than --labels, --truth and prob_*; noise (-1) is left out of
    the internal metrics and counted as one more label by the external ones. One JSON object.

    Example: dltool cluster evaluate clusters.csv --truth label
    """
    from dltool.cluster.metrics import evaluate_table
    from dltool.core.output import emit_object

    cfg = EvaluateConfig(labels=labels, truth=truth, sample=sample, features=common.features,
                         exclude=common.exclude, dropna=common.dropna, seed=common.seed, device=common.device)
    emit_object(evaluate_table(common.read(), cfg), fmt)


_CHOOSE = ChooseKConfig  # the defaults of cluster choose-k


@app.command("choose-k")
@table_options(without=("output",))
def choose_k(
    k: Annotated[str, typer.Option("--k", "-k", help="The ks to try: 2..15, 2-15 or 2,4,8.")] = "2..10",
    method: Annotated[str, typer.Option("--method", help="elbow|silhouette: how the k is chosen.")] = _CHOOSE.method,
    n_init: NInitOpt = _CHOOSE.n_init,
    max_iter: MaxIterOpt = _CHOOSE.max_iter,
    sample: SampleOpt = _CHOOSE.sample,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write inertia and silhouette against k as a PNG.", dir_okay=False)] = None,
    fmt: FormatOpt = "auto",
    *,
    common: TableOptions,
):
    """Choose k for k-means: inertia and silhouette for each k, the chosen k (elbow or best silhouette).

    Elbow: with both axes scaled to [0, 1], the k whose point is farthest from the straight line
    joining the first and last points of the inertia curve. Prints one JSON object
    {"method", "chosen_k", "scores": [{"k", "inertia", "silhouette"}, ...]}.

    Example: dltool cluster choose-k features.csv --k 2..15 --method silhouette --plot k.png
    """
    from dltool.cluster.choose_k import choose_k_table, parse_k_range
    from dltool.core.output import emit_object

    cfg = ChooseKConfig(ks=tuple(parse_k_range(k)), method=method, n_init=n_init, max_iter=max_iter, sample=sample,
                        seed=common.seed, device=common.device, features=common.features, exclude=common.exclude,
                        dropna=common.dropna, standardize=common.standardize, plot=plot)
    emit_object(choose_k_table(common.read(), cfg), fmt)


# ---------------------------------------------------------------- deep (DEC, trains on the shared engine)

from dltool.cli.train_options import (  # noqa: E402
    engine_options,
    task_config,
)

_DEEP = DeepConfig  # the defaults of cluster deep


@app.command("deep")
@engine_options(batch_size=_DEEP.run.batch_size, without=("val_split", "val"))
@table_options(without=("standardize", "device", "seed", "quiet", "config"))
def deep(
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
    *,
    options: dict,
    common: TableOptions,
):
    """Deep embedded clustering (DEC): an autoencoder's codes, clustered and refined jointly.

    Pretrain an MLP autoencoder, k-means on its codes, then refine encoder and centres jointly on
    KL(P||Q) with Student-t soft assignments (shared engine: --device cuda, checkpoints, --resume).
    Writes the table with `cluster` and prob_0..prob_{k-1}; the model goes to the run folder (--out),
    the pretrained autoencoder to its pretrain/ subfolder.

    Example: dltool cluster deep digits.csv -k 10 --exclude label --out runs/dec -o clusters.csv
    """
    apply_console_options(quiet=options["quiet"], fmt=common.fmt, table_output=common.output)
    from dltool.cluster import deep as dec
    from dltool.core.console import info

    config = task_config(DeepConfig, options, command_options=("table", "output"), unsaved=("output", "plot"))
    result = dec.cluster_table(common.read(), config)
    info(result.summary())
    info(f"model: {result.facts['run_dir']}/model.pt")
    common.write(result.table)
