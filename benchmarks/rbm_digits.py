"""scikit-learn's example "Restricted Boltzmann Machine features for digit classification", with dltool's RBM.

    .venv/bin/python benchmarks/rbm_digits.py                 # seeds 0,1,2 (a few minutes on 2 busy cores)
    .venv/bin/python benchmarks/rbm_digits.py --seeds 0       # one seed

The data, split and classifier are the example's (plot_rbm_logistic_classification.py): the 1,797 digits
plus four copies nudged by one pixel up/left/right/down (8,985 rows), `minmax_scale` to [0, 1], a
`train_test_split(test_size=0.2, random_state=0)`, and LogisticRegression(solver="newton-cg", C=6000) on
100 RBM features (learning_rate 0.06, 10 iterations, batch 10); raw pixels use C=100. One change: the
example's `tol=1` stops newton-cg before its first step in scikit-learn 1.9 (0 iterations, accuracy 0.097
= chance on raw pixels), so the classifier keeps scikit-learn's default tol (1e-4).

Rows, per seed:
- sklearn PCD-1: scikit-learn's BernoulliRBM (persistent CD, one Gibbs step), the example's pipeline.
- dltool CD-1 and dltool PCD-1 (`--persistent`): `dltool reduce rbm train.csv -n 100 --lr 0.06 --epochs 10
  --batch-size 10 --save-model m.pt`, then `dltool reduce transform m.pt test.csv`, through the CLI;
  the same logistic regression on those features.
- free-energy gap: mean F(v) on the held-out rows minus on the training rows (positive: the model
  prefers what it was trained on; large: overfitting), for every RBM.
Bar: dltool's CD-1 accuracy >= scikit-learn's (mean over the seeds). The last line reads
`accuracy sklearn=<a> dltool_cd1=<b> dltool_pcd1=<c> raw=<d>`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def nudged_digits():
    """The example's data: digits plus four one-pixel shifts, min-max scaled, its split."""
    from scipy.ndimage import convolve
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import minmax_scale

    X, y = datasets.load_digits(return_X_y=True)
    X = np.asarray(X, "float32")
    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, v) for v in directions])
    y = np.concatenate([y for _ in range(5)], axis=0)
    X = minmax_scale(X, feature_range=(0, 1))
    return train_test_split(X, y, test_size=0.2, random_state=0)


def logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="newton-cg", C=C)


def accuracy(F_train, y_train, F_test, y_test, C: float) -> float:
    return float(logistic(C).fit(F_train, y_train).score(F_test, y_test))


def write_table(path: Path, X: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write(",".join(f"p{j}" for j in range(X.shape[1])) + "\n")
        for row in X:
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def dltool(*args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")


def read_features(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def ours(tmp: Path, X_train, X_test, *, persistent: bool, seed: int, device: str):
    """dltool's features of the train and test rows, and the free-energy gap, through the CLI."""
    from dltool.reduce.reduction import load_reducer

    model = tmp / f"rbm-{int(persistent)}-{seed}.pt"
    dltool("reduce", "rbm", tmp / "train.csv", "-n", 100, "--lr", 0.06, "--epochs", 10, "--batch-size", 10,
           *(["--persistent"] if persistent else []), "--seed", seed, "--device", device, "--save-model", model,
           "-q", "--format", "csv", "-o", tmp / "train_f.csv")
    dltool("reduce", "transform", model, tmp / "test.csv", "-q", "--format", "csv", "-o", tmp / "test_f.csv")
    rbm = load_reducer(model, device="cpu").reducer
    gap = float(rbm.free_energy(X_test).mean() - rbm.free_energy(X_train).mean())
    return read_features(tmp / "train_f.csv"), read_features(tmp / "test_f.csv"), gap


def sklearn_rbm(X_train, X_test, seed: int):
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(random_state=seed, learning_rate=0.06, n_iter=10, n_components=100).fit(X_train)
    # scikit-learn has no free energy method: F(v) = -b.v - sum softplus(W v + c), as ours computes it
    def free(X):
        return -(X @ rbm.intercept_visible_) - np.logaddexp(0, X @ rbm.components_.T + rbm.intercept_hidden_).sum(1)

    gap = float(free(X_test).mean() - free(X_train).mean())
    return rbm.transform(X_train), rbm.transform(X_test), gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    X_train, X_test, y_train, y_test = nudged_digits()
    print(f"data: {len(X_train)} train, {len(X_test)} test rows x {X_train.shape[1]} pixels in [0, 1]")
    raw = accuracy(X_train, y_train, X_test, y_test, C=100.0)
    print(f"raw pixels, logistic C=100: accuracy {raw:.4f}")
    rows = {"sklearn PCD-1": [], "dltool CD-1": [], "dltool PCD-1": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        write_table(tmp / "train.csv", X_train)
        write_table(tmp / "test.csv", X_test)
        for seed in seeds:
            runs = {"sklearn PCD-1": lambda s=seed: sklearn_rbm(X_train, X_test, s),
                    "dltool CD-1": lambda s=seed: ours(tmp, X_train, X_test, persistent=False, seed=s, device=args.device),
                    "dltool PCD-1": lambda s=seed: ours(tmp, X_train, X_test, persistent=True, seed=s, device=args.device)}
            for name, run in runs.items():
                t = time.perf_counter()
                F_train, F_test, gap = run()
                seconds = time.perf_counter() - t
                acc = accuracy(F_train, y_train, F_test, y_test, C=6000.0)
                rows[name].append((acc, gap, seconds))
                print(f"seed {seed} {name:<14} accuracy {acc:.4f}  free-energy gap (test - train) {gap:+.3f}  "
                      f"fit {seconds:.1f}s")
    print(f"{'':<14} {'accuracy mean':>13} {'min':>7} {'F gap mean':>11}")
    for name, values in rows.items():
        a = np.array([v[0] for v in values])
        g = np.array([v[1] for v in values])
        print(f"{name:<14} {a.mean():>13.4f} {a.min():>7.4f} {g.mean():>+11.3f}")
    mean = {k: np.mean([v[0] for v in vals]) for k, vals in rows.items()}
    ok = mean["dltool CD-1"] >= mean["sklearn PCD-1"]
    print(f"bar: dltool CD-1 >= sklearn PCD-1 on mean accuracy: {'met' if ok else 'NOT met'}")
    print(f"accuracy sklearn={mean['sklearn PCD-1']:.4f} dltool_cd1={mean['dltool CD-1']:.4f} "
          f"dltool_pcd1={mean['dltool PCD-1']:.4f} raw={raw:.4f}")


if __name__ == "__main__":
    main()
