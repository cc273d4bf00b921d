"""t-SNE embedding: openTSNE when it is installed (faster on CPU), scikit-learn's otherwise.

`tsne_embed` is the one entry point (benchmarks/cluster_reduce.py imports it). Both backends
are deterministic for a given seed on the same machine. openTSNE (Poličar et al.) uses the
same objective with Barnes-Hut gradients for small data and FFT-interpolated ones for large
data; see benchmarks/cluster_reduce.py for its time against scikit-learn's TSNE.
"""

from __future__ import annotations

import numpy as np

from dltool.core.errors import OptionError

INITS = ("pca", "random")
BACKENDS = ("auto", "opentsne", "sklearn")
SMALL = 1000  # rows below which one thread is faster than several


def check_tsne_params(n_samples: int, n_components: int, perplexity: float, init: str) -> None:
    if init not in INITS:
        from dltool.core.errors import unknown_name

        raise unknown_name("--init", init, INITS)
    if not 1 <= n_components <= 3:
        raise OptionError(f"-n {n_components}: t-SNE embeds into 1, 2 or 3 dimensions", "use -n 2 or -n 3")
    if not 0 < perplexity < n_samples:
        raise OptionError(f"--perplexity {perplexity} must be between 0 and the number of rows ({n_samples})",
                          f"use a smaller --perplexity (about rows / 3 = {max(1.0, n_samples / 3):.0f} at most)")


def _opentsne_available() -> bool:
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads(n_samples: int) -> int:
    """All cores for real work; one thread below SMALL rows, where threads only add overhead."""
    import os

    return 1 if n_samples < SMALL else max(1, os.cpu_count() or 1)


def tsne_embed(X: np.ndarray, n_components: int = 2, perplexity: float = 30.0, init: str = "pca", seed: int = 0,
               *, backend: str = "auto", n_jobs: int | None = None, max_iter: int = 1000) -> np.ndarray:
    """Embed the rows of X with t-SNE; returns an (n_samples, n_components) float64 array.

    backend: "auto" (openTSNE if installed, else scikit-learn), "opentsne" or "sklearn".
    max_iter counts all iterations (250 of early exaggeration + the rest), as scikit-learn does.
    n_jobs: threads (default: all cores, or 1 for fewer than SMALL rows). Same seed, same
    result on the same machine.
    """
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float64)
    check_tsne_params(len(X), n_components, perplexity, init)
    if backend not in BACKENDS:
        from dltool.core.errors import unknown_name

        raise unknown_name("t-SNE backend", backend, BACKENDS)
    if backend == "auto":
        backend = "opentsne" if _opentsne_available() else "sklearn"
    threads = n_jobs or default_threads(len(X))
    # OpenMP and BLAS follow n_jobs too: oversubscribed threads on a busy machine cost up to 3x
    with threadpool_limits(limits=threads):
        if backend == "sklearn":
            from sklearn.manifold import TSNE

            return TSNE(n_components=n_components, perplexity=perplexity, init=init, random_state=seed,
                        max_iter=max(max_iter, 250), n_jobs=threads).fit_transform(X).astype(np.float64)
        from openTSNE import TSNE as OpenTSNE

        # openTSNE needs 3 * perplexity < rows (scikit-learn caps its neighbours the same way)
        effective = min(perplexity, max(1.0, (len(X) - 1) / 3))
        if effective < perplexity:
            from dltool.core.console import warn

            warn(f"--perplexity {perplexity:g} is more than (rows - 1) / 3 = {effective:.3g} for {len(X)} rows; "
                 f"using {effective:.3g}")
        emb = OpenTSNE(n_components=n_components, perplexity=effective, initialization=init, random_state=seed,
                       n_iter=max(max_iter - 250, 1), early_exaggeration_iter=250,
                       negative_gradient_method="bh" if n_components > 2 or len(X) < 10_000 else "fft",
                       n_jobs=threads, verbose=False).fit(X)
        return np.asarray(emb, dtype=np.float64)
