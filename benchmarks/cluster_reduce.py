"""Speed of dltool's k-means and t-SNE against scikit-learn, measured in the same run.

    .venv/bin/python benchmarks/cluster_reduce.py            # full sizes (a few minutes on 2 cores)
    .venv/bin/python benchmarks/cluster_reduce.py --quick    # smaller, for a smoke test
    .venv/bin/python benchmarks/cluster_reduce.py --threads 1  # like for like on a busy machine

Each part times the domain function the command calls (no file I/O) and the scikit-learn estimator
on the same data with the same settings, alternating them `--repeats` times and keeping each one's
best time (the least disturbed by other work on the machine). ratio = dltool time / scikit-learn time:
below 1 is faster. Bars: k-means ratio <= 1.2.

- kmeans: `dltool.cluster.clustering.fit(X, "kmeans", ...)` on CPU (what `dltool cluster kmeans --device
  cpu` runs) vs `sklearn.cluster.KMeans`, 200,000 x 32, same k, n_init, max_iter and tol=0 so both
  run the same fixed number of Lloyd iterations unless they converge. Also reported, not a bar: the
  torch engine on CPU (`--engine torch`).
- tsne: `dltool.reduce.tsne.tsne_embed` vs `sklearn.manifold.TSNE`, 5,000 x 50, perplexity 30, PCA
  init; trustworthiness (k=10) of both embeddings shows that the faster one is not worse.

The last line reads `kmeans ratio=<x> tsne ratio=<y>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def best_of(fns: dict, repeats: int) -> dict:
    """{name: (best seconds, last result)}, running the functions in turn `repeats` times."""
    times = {k: [] for k in fns}
    results = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
    return {k: (min(v), results[k]) for k, v in times.items()}


def bench_kmeans(rows: int, features: int, k: int, n_init: int, max_iter: int, repeats: int) -> float:
    from sklearn.cluster import KMeans

    from dltool.cluster import clustering

    # overlapping groups, so that Lloyd runs all max_iter iterations instead of converging in three
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, features)) + rng.integers(0, 3, size=(rows, 1)) * 0.5
    params = dict(n_clusters=k, n_init=n_init, max_iter=max_iter, tol=0.0)
    fns = {
        "dltool": lambda: clustering.fit(X, "kmeans", params, seed=0, device="cpu").estimator,
        "sklearn": lambda: KMeans(k, n_init=n_init, max_iter=max_iter, tol=0.0, random_state=0).fit(X),
    }
    res = best_of(fns, repeats)
    # measured apart, so that torch's worker threads do not disturb the pair above
    res.update(best_of({"dltool-torch": lambda: clustering.fit(X, "kmeans", {**params, "engine": "torch"}, seed=0,
                                                        device="cpu").estimator}, max(1, repeats // 2)))
    print(f"kmeans {rows:,} x {features}, k={k}, n_init={n_init}, max_iter={max_iter}, tol=0:")
    for name, (sec, est) in res.items():
        print(f"  {name:13s} {sec:8.3f} s  inertia {est.inertia_:.6g}  iterations {est.n_iter_}")
    torch_ratio = res["dltool-torch"][0] / res["sklearn"][0]
    print(f"  (not a bar) kmeans --engine torch on CPU: ratio={torch_ratio:.2f}")
    ratio = res["dltool"][0] / res["sklearn"][0]
    print(f"kmeans ratio={ratio:.2f}  (bar: <= 1.2)")
    return ratio


def bench_tsne(rows: int, features: int, repeats: int) -> float | None:
    try:
        from dltool.reduce.tsne import tsne_embed
    except ImportError as e:
        print(f"tsne: skipped — dltool.reduce.tsne.tsne_embed does not import yet ({e})")
        return None
    from sklearn.datasets import make_blobs
    from sklearn.manifold import TSNE, trustworthiness

    X, _ = make_blobs(rows, features, centers=10, cluster_std=3.0, random_state=0)
    fns = {
        "dltool": lambda: tsne_embed(X, n_components=2, perplexity=30.0, init="pca", seed=0),
        "sklearn": lambda: TSNE(n_components=2, perplexity=30.0, init="pca", random_state=0).fit_transform(X),
    }
    res = best_of(fns, repeats)
    print(f"tsne {rows:,} x {features}, perplexity 30, init pca:")
    for name, (sec, emb) in res.items():
        print(f"  {name:13s} {sec:8.3f} s  trustworthiness(k=10) {trustworthiness(X, emb, n_neighbors=10):.4f}")
    ratio = res["dltool"][0] / res["sklearn"][0]
    print(f"tsne ratio={ratio:.2f}")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data (smoke test; not the bar)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-tsne", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit BLAS/OpenMP/torch threads for both sides (a like-for-like figure on a busy machine)")
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    blas = ", ".join(sorted({f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()}))
    print(f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, thread pools {blas}")
    rows = 20_000 if args.quick else 200_000
    parts = [f"kmeans ratio={bench_kmeans(rows, 32, 10, 3, 50, args.repeats):.2f}"]
    if not args.skip_tsne:
        r = bench_tsne(1_000 if args.quick else 5_000, 50, 1 if args.quick else max(1, args.repeats // 4))
        if r is not None:
            parts.append(f"tsne ratio={r:.2f}")
    print(" ".join(parts))


if __name__ == "__main__":
    main()
