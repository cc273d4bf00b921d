"""t-SNE time: dltool.reduce.tsne.tsne_embed against scikit-learn's TSNE, measured in the same run.

    .venv/bin/python benchmarks/reduce_tsne.py [--rows 5000] [--dims 50] [--repeats 3] [--threads N]

Both do the same work: perplexity 30, PCA init, 1000 iterations (250 of them early
exaggeration), on the same number of threads (OpenMP and BLAS limited to --threads, default all
cores; on a machine shared with other jobs, --threads 1 gives steadier figures: oversubscribed
OpenMP threads can make either side several times slower). The data are 10 Gaussian blobs; the printed ARI
(k-means with k=10 on each embedding against the blob labels) checks that both embeddings are
equally good. Runs are interleaved and the median is reported, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--dims", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="threads for both (0: all cores)")
    args = ap.parse_args()
    import os

    threads = args.threads or os.cpu_count() or 1

    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs
    from sklearn.manifold import TSNE
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    from dltool.reduce.tsne import _opentsne_available, tsne_embed

    X, y = make_blobs(n_samples=args.rows, n_features=args.dims, centers=10, cluster_std=4.0, random_state=0)
    runs = {"sklearn TSNE (baseline)": lambda: TSNE(perplexity=30.0, init="pca", random_state=0, n_jobs=threads)
            .fit_transform(X),
            "tsne_embed": lambda: tsne_embed(X, 2, 30.0, "pca", 0, n_jobs=threads)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    ari = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            with threadpool_limits(limits=threads):
                t = time.perf_counter()
                emb = fn()
                times[name].append(time.perf_counter() - t)
            ari[name] = adjusted_rand_score(y, KMeans(10, n_init=4, random_state=0).fit_predict(emb))
    base = statistics.median(times["sklearn TSNE (baseline)"])
    backend = "openTSNE" if _opentsne_available() else "scikit-learn"
    print(f"t-SNE on {args.rows} x {args.dims}, {threads} thread(s), median of {args.repeats} "
          f"(tsne_embed backend: {backend})")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<26} {med:7.2f} s   ratio {med / base:5.2f}x   ARI {ari[name]:.3f}   "
              f"runs {', '.join(f'{t:.1f}' for t in ts)}")


if __name__ == "__main__":
    main()
