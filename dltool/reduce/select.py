"""Feature selection: filters, wrappers, embedded and hybrid methods (`dltool reduce select`).

Every method gives each feature a score and a rank and marks a subset as selected.

Scored methods (a score per feature; a cut-off rule picks the subset):
- filters (on the raw features): `pearson` / `spearman` (|correlation| with the target; for class
  labels the largest |correlation| with a one-vs-rest indicator of each class), `chi2` (features
  are min-max scaled to [0, 1] first, since chi-squared needs non-negative values; class targets
  only), `mi` (mutual information, i.e. information gain), `anova` (F statistic);
- `permutation` (mean drop of the held-out score when a feature is shuffled; the estimator is fitted
  on 75% of the rows and scored on the other 25%), `forest` (random-forest impurity importance),
  `l1` (|coefficient| of an L1-regularised logistic regression, or of a Lasso for a numeric target).
Cut-off rules, one at a time: `k` (the top k), `threshold` (score >= t), `elbow` (see
`elbow_keep`). Without one: `l1` keeps the non-zero coefficients, the others use the elbow.

Subset methods (a search over subsets of size `k`, default half of the features):
- `sfs` / `sbe`: scikit-learn's SequentialFeatureSelector, forward / backward;
- `rfe`: SVM-RFE (scikit-learn's RFE with a linear SVM, one feature eliminated per round); the
  score is the number of rounds a feature survived, so the ranking is the elimination order;
- `genetic`: a seeded genetic search over feature masks (see `genetic_search`); it chooses the
  subset size itself, trading score against a penalty per feature;
- `hybrid`: a filter (`filter_method`, default anova) keeps `pre_k` features, then sfs picks `k`.
For sfs, sbe and genetic the score is the feature's contribution to the cross-validated score of
the chosen subset: for a selected feature the loss when it is removed, for another the gain if it
were added. For hybrid it is the filter score. Selected features always rank first.

Wrappers fit their estimator on standardized features (zero mean, unit variance; the output
table keeps the original values). The task is classification for a non-numeric target or an
integer-valued one with at most MAX_CLASSES distinct values, regression otherwise; `task`
overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltool.core.applies import Applies, check_range
from dltool.core.errors import InputError, OptionError, suggest, unknown_name
from dltool.core.tables import Table

FILTERS = ("pearson", "spearman", "chi2", "mi", "anova")
SCORED = FILTERS + ("permutation", "forest", "l1")
SUBSET = ("sfs", "sbe", "rfe", "genetic", "hybrid")
METHODS = ("pearson", "spearman", "chi2", "mi", "anova", "sfs", "sbe", "permutation", "genetic", "rfe", "forest",
           "l1", "hybrid")
TASKS = ("auto", "classification", "regression")
ESTIMATORS = ("auto", "linear", "svm", "forest", "knn")
MAX_CLASSES = 20


@dataclass(frozen=True)
class SelectConfig:
    method: str
    target: str
    k: int | None = None
    threshold: float | None = None
    elbow: bool = False
    task: str = "auto"
    estimator: str = "auto"
    cv: int = 5
    generations: int = 20
    population: int = 30
    penalty: float = 0.01
    pre_k: int | None = None
    filter_method: str = "anova"
    n_repeats: int = 10
    alpha: float | None = None
    features: list[str] | None = None
    exclude: list[str] | None = None
    dropna: bool = False
    seed: int = 0
    device: str = "auto"
    ranking_path: Path | None = None  # also write the ranking here (.jsonl, .csv or .json)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        """Refuse what no method could use and what the chosen one does not take, before any data is read."""
        if self.method not in METHODS:
            raise unknown_name("--method", self.method, METHODS)
        METHOD_OPTIONS.check(self)
        if self.task not in TASKS:
            raise unknown_name("--task", self.task, TASKS)
        if self.estimator not in ESTIMATORS:
            raise unknown_name("--estimator", self.estimator, ESTIMATORS)
        if self.filter_method not in FILTERS:
            raise unknown_name("--filter", self.filter_method, FILTERS)
        for flag, value, low, low_open in (("--k", self.k, 1, False), ("--pre-k", self.pre_k, 1, False),
                                           ("--cv", self.cv, 2, False), ("--generations", self.generations, 1, False),
                                           ("--population", self.population, 2, False),
                                           ("--penalty", self.penalty, 0, False),
                                           ("--n-repeats", self.n_repeats, 1, False), ("--alpha", self.alpha, 0, True)):
            check_range(flag, value, low=low, low_open=low_open)
        if self.pre_k is not None and self.k is not None and self.pre_k < self.k:
            raise OptionError(f"--pre-k {self.pre_k} is less than --k {self.k}", "the filter must keep at least --k features")
        if sum([self.k is not None, self.threshold is not None, self.elbow]) > 1:
            raise OptionError("--k, --threshold and --elbow are alternative cut-off rules", "give only one of them")


_WRAPPERS = ("sfs", "sbe", "permutation", "genetic", "hybrid")
#: the options only some methods take: a method refuses the others when given (dltool.core.applies)
METHOD_OPTIONS = Applies("method", {
    m: (("k",) if m != "genetic" else ())
    + (("threshold", "elbow") if m in SCORED else ())
    + (("estimator",) if m in _WRAPPERS else ())
    + (("cv",) if m in ("sfs", "sbe", "genetic", "hybrid", "l1") else ())  # l1: LassoCV's folds
    + {"genetic": ("generations", "population", "penalty"), "hybrid": ("pre_k", "filter_method"),
       "permutation": ("n_repeats",), "l1": ("alpha",)}.get(m, ())
    for m in METHODS}, flags={"filter_method": "--filter"})


@dataclass
class SelectResult:
    table: Table
    ranking: list[dict]            # {feature, score, rank, selected}, best first
    selected: list[str]
    task: str
    cutoff: str
    report: dict = field(default_factory=dict)


# ---------------------------------------------------------------- target and task


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return ~np.isfinite(values.astype(np.float64))
    return np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], dtype=bool)


def infer_task(y: np.ndarray) -> str:
    """classification for strings or few integer values (<= MAX_CLASSES), regression otherwise."""
    if y.dtype.kind not in "fiub":
        return "classification"
    yf = y.astype(np.float64)
    if np.all(yf == np.round(yf)) and len(np.unique(yf)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _target(table: Table, config: SelectConfig) -> tuple[Table, np.ndarray, str]:
    name = config.target
    if name not in table.columns:
        raise OptionError(f"--target: no column '{name}' in the table",
                          suggest(name, table.names) or f"columns are: {', '.join(table.names)}")
    if config.features and name in config.features:
        raise OptionError(f"--target column '{name}' is also listed in --features", "leave it out of --features")
    if config.task not in TASKS:
        raise unknown_name("--task", config.task, TASKS)
    values = table.columns[name]
    miss = _missing(values)
    if miss.any():
        if not config.dropna:
            row = int(np.flatnonzero(miss)[0])
            raise InputError(f"row {row + 1}: the target column '{name}' is empty",
                             "fill it in, or pass --dropna to drop such rows")
        from dltool.core.console import warn

        warn(f"--dropna: dropped {int(miss.sum())} of {len(miss)} rows without a target")
        table = table.select_rows(~miss)
        values = table.columns[name]
    task = infer_task(values) if config.task == "auto" else config.task
    if task == "regression" and values.dtype.kind not in "fiub":
        raise OptionError(f"--task regression needs a numeric target, but '{name}' holds text",
                          "use --task classification (or auto)")
    return table, values, task


def _labels(y: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return y.astype(np.float64)
    if y.dtype.kind in "fiub":
        yf = y.astype(np.float64)
        return yf.astype(np.int64) if np.all(yf == np.round(yf)) else yf.astype(str)
    return y.astype(str)


# ---------------------------------------------------------------- filters


def _abs_corr(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """max over columns of Y of |Pearson r| between each column of X and that column of Y."""
    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    nx = np.sqrt((Xc**2).sum(axis=0))
    ny = np.sqrt((Yc**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (Xc.T @ Yc) / np.outer(nx, ny)
    r = np.nan_to_num(np.abs(r), nan=0.0, posinf=0.0, neginf=0.0)
    return r.max(axis=1)


def _target_matrix(y: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return y.reshape(-1, 1).astype(np.float64)
    classes = np.unique(y)
    return (y[:, None] == classes[None, :]).astype(np.float64)


def filter_scores(method: str, X: np.ndarray, y: np.ndarray, task: str, seed: int) -> np.ndarray:
    """One score per feature, higher = more related to the target; constant features score 0.

    Constant features are scored 0 here rather than handed to scikit-learn (which warns about them);
    a zero within-class variance makes ANOVA's F infinite (numpy's divide warning is expected there,
    and the score is capped); any other warning is shown.
    """
    from dltool.core.console import library_warnings

    varying = np.ptp(X, axis=0) > 0
    scores = np.zeros(X.shape[1])
    if varying.any():
        with library_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            scores[varying] = _filter_scores(method, X[:, varying], y, task, seed)
    return scores


def _filter_scores(method: str, X: np.ndarray, y: np.ndarray, task: str, seed: int) -> np.ndarray:
    from sklearn import feature_selection as fs

    if method == "pearson":
        return _abs_corr(X, _target_matrix(y, task))
    if method == "spearman":
        from scipy.stats import rankdata

        Yt = _target_matrix(y, task)
        if task == "regression":
            Yt = rankdata(Yt, axis=0)
        return _abs_corr(rankdata(X, axis=0), Yt)
    if method == "chi2":
        if task != "classification":
            raise OptionError("--method chi2 needs class labels, but the target is numeric (regression)",
                              "use mi, anova, pearson or spearman, or --task classification")
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        scores, _ = fs.chi2((X - lo) / span, y)
        return np.nan_to_num(scores, nan=0.0)
    if method == "mi":
        f = fs.mutual_info_classif if task == "classification" else fs.mutual_info_regression
        return f(X, y, random_state=seed)
    if method == "anova":
        f = fs.f_classif if task == "classification" else fs.f_regression
        scores, _ = f(X, y)
        return np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max)
    raise unknown_name("filter method", method, FILTERS)


# ---------------------------------------------------------------- cut-off rules


def elbow_keep(sorted_scores: np.ndarray) -> int:
    """How many of the (descending) scores to keep by the elbow rule.

    Scale rank and score to [0, 1], draw the chord from the best to the worst point and find the
    point farthest from it (the elbow). Below the chord (a sharp drop, then a flat tail) the elbow
    is the first point of the tail, so the features before it are kept; above the chord (a
    plateau, then a drop) it is the last point of the plateau and is kept too. A flat curve keeps
    everything.
    """
    s = np.asarray(sorted_scores, dtype=np.float64)
    n = len(s)
    if n <= 2 or s[0] <= s[-1]:
        return n if n <= 1 or s[0] <= s[-1] else 1
    x = np.arange(n) / (n - 1)
    y = (s - s[-1]) / (s[0] - s[-1])
    d = 1.0 - x - y  # signed distance to the chord (times sqrt 2); positive below it
    i = int(np.argmax(np.abs(d)))
    return max(1, i if d[i] > 0 else i + 1)


def apply_cutoff(scores: np.ndarray, order: np.ndarray, config: SelectConfig, method: str) -> tuple[np.ndarray, str]:
    p = len(scores)
    mask = np.zeros(p, dtype=bool)
    if config.k is not None:
        mask[order[: config.k]] = True
        return mask, f"top k={config.k}"
    if config.threshold is not None:
        mask = scores >= config.threshold
        if not mask.any():
            raise OptionError(f"--threshold {config.threshold} keeps no feature; the best {method} score is "
                              f"{scores.max():.4g}", "lower --threshold, or use --k or --elbow")
        return mask, f"score >= {config.threshold}"
    if method == "l1" and not config.elbow:
        mask = scores > 0
        if not mask.any():
            raise OptionError("--method l1 set every coefficient to zero", "lower --alpha (weaker regularisation)")
        return mask, "non-zero coefficients"
    keep = elbow_keep(scores[order])
    mask[order[:keep]] = True
    return mask, f"elbow (kept {keep})"


# ---------------------------------------------------------------- estimators and CV


def make_estimator(name: str, task: str, seed: int):
    if name not in ESTIMATORS:
        raise unknown_name("--estimator", name, ESTIMATORS)
    name = "linear" if name == "auto" else name
    if task == "classification":
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import LinearSVC

        return {"linear": lambda: LogisticRegression(max_iter=2000),
                "svm": lambda: LinearSVC(random_state=seed, max_iter=20000),
                "forest": lambda: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
                "knn": lambda: KNeighborsClassifier()}[name]()
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.svm import LinearSVR

    return {"linear": lambda: Ridge(),
            "svm": lambda: LinearSVR(random_state=seed, max_iter=20000),
            "forest": lambda: RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1),
            "knn": lambda: KNeighborsRegressor()}[name]()


def make_cv(n_splits: int, y: np.ndarray, task: str, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if n_splits < 2:
        raise OptionError(f"--cv {n_splits}: cross-validation needs at least 2 folds", "use --cv 5")
    if task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < n_splits:
            raise InputError(f"--cv {n_splits} needs at least {n_splits} rows of every class; class "
                             f"'{classes[counts.argmin()]}' has {counts.min()}", "use a smaller --cv or more rows")
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    if len(y) < n_splits:
        raise InputError(f"--cv {n_splits} needs at least {n_splits} rows; the table has {len(y)}",
                         "use a smaller --cv")
    return KFold(n_splits=n_splits, shuffle=True, random_state=seed)


class _CVScorer:
    """Cached mean cross-validated score of the estimator on a feature mask (empty: a dummy model)."""

    def __init__(self, estimator, X, y, cv, task):
        self.estimator, self.X, self.y, self.cv, self.task = estimator, X, y, cv, task
        self.cache: dict[bytes, float] = {}

    def __call__(self, mask: np.ndarray) -> float:
        key = np.packbits(mask).tobytes()
        if key not in self.cache:
            from sklearn.base import clone
            from sklearn.model_selection import cross_val_score

            if mask.any():
                est, X = clone(self.estimator), self.X[:, mask]
            else:
                from sklearn.dummy import DummyClassifier, DummyRegressor

                est = DummyClassifier() if self.task == "classification" else DummyRegressor()
                X = np.zeros((len(self.X), 1))
            self.cache[key] = float(np.mean(cross_val_score(est, X, self.y, cv=self.cv)))
        return self.cache[key]


def contributions(score: _CVScorer, mask: np.ndarray) -> np.ndarray:
    """Per feature: loss of CV score when a selected one is removed, gain when another is added."""
    base = score(mask)
    out = np.empty(len(mask))
    for j in range(len(mask)):
        m = mask.copy()
        m[j] = not m[j]
        out[j] = base - score(m) if mask[j] else score(m) - base
    return out


def genetic_search(score: _CVScorer, n_features: int, *, population: int, generations: int, penalty: float,
                   seed: int, tournament: int = 3, crossover_rate: float = 0.9,
                   mutation_rate: float | None = None) -> tuple[np.ndarray, float, list[float]]:
    """A seeded genetic search over feature masks; returns (best mask, its fitness, best fitness per generation).

    fitness(mask) = mean CV score - penalty * (number of selected features). Each generation keeps
    the best individual (elitism) and fills the rest with children of two tournament winners
    (the fittest of `tournament` random individuals): uniform crossover (each bit from either
    parent, with probability `crossover_rate`, else a copy of the first) and bit-flip mutation
    (each bit flips with probability 1 / n_features). Empty masks get one random bit.
    """
    rng = np.random.default_rng(seed)
    p = n_features
    mutation_rate = 1.0 / p if mutation_rate is None else mutation_rate

    def fitness(m):
        return score(m) - penalty * int(m.sum())

    def repair(m):
        if not m.any():
            m[rng.integers(p)] = True
        return m

    pop = [repair(rng.random(p) < 0.5) for _ in range(population)]
    history = []
    from dltool.core.console import progress

    with progress("genetic search", generations) as advance:
        for _ in range(generations):
            fit = np.array([fitness(m) for m in pop])
            best = int(np.argmax(fit))
            history.append(float(fit[best]))
            advance(1, status=f"best {fit[best]:.4f}")
            children = [pop[best].copy()]
            while len(children) < population:
                a = pop[_tournament(rng, fit, tournament)]
                b = pop[_tournament(rng, fit, tournament)]
                child = np.where(rng.random(p) < 0.5, a, b) if rng.random() < crossover_rate else a.copy()
                child = child ^ (rng.random(p) < mutation_rate)
                children.append(repair(child))
            pop = children
    fit = np.array([fitness(m) for m in pop])
    best = int(np.argmax(fit))
    history.append(float(fit[best]))
    return pop[best].copy(), float(fit[best]), history


def _tournament(rng, fit: np.ndarray, size: int) -> int:
    idx = rng.choice(len(fit), size=min(size, len(fit)), replace=False)
    return int(idx[np.argmax(fit[idx])])


# ---------------------------------------------------------------- the methods


def _fit_reporting_warnings(fn, what: str):
    """fn(), with a ConvergenceWarning said as one line about `what`; every other warning shown once."""
    from sklearn.exceptions import ConvergenceWarning

    from dltool.core.console import library_warnings

    with library_warnings({ConvergenceWarning: f"{what} did not fully converge; its scores are approximate"}):
        return fn()


def select_features(X: np.ndarray, y: np.ndarray, names: list[str], task: str,
                    config: SelectConfig) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """(scores, selected mask, cut-off description, extra report) for one method."""
    method, seed, p = config.method, config.seed, X.shape[1]
    report: dict = {}
    if method in FILTERS:
        scores = filter_scores(method, X, y, task, seed)
        order = np.argsort(-scores, kind="stable")
        mask, cutoff = apply_cutoff(scores, order, config, method)
        return scores, mask, cutoff, report
    from dltool.core.scaling import standardize

    Xs = standardize(X)
    if method == "forest":
        est = make_estimator("forest", task, seed)
        est.set_params(n_estimators=200)
        scores = est.fit(X, y).feature_importances_
    elif method == "l1":
        if task == "classification":
            from sklearn.linear_model import LogisticRegression

            C = 1.0 / config.alpha if config.alpha else 1.0
            # l1_ratio=1 is the L1 penalty from scikit-learn 1.8 on (the floor in pyproject.toml); passing
            # penalty="l1" as well is deprecated there and would warn on every run
            est = LogisticRegression(l1_ratio=1.0, solver="saga", C=C, max_iter=5000, random_state=seed)
        else:
            from sklearn.linear_model import Lasso, LassoCV

            est = (Lasso(alpha=config.alpha, random_state=seed) if config.alpha
                   else LassoCV(cv=make_cv(config.cv, y, task, seed), random_state=seed))
        est = _fit_reporting_warnings(lambda: est.fit(Xs, y), "the L1 model")
        scores = np.abs(np.atleast_2d(est.coef_)).max(axis=0)
        if hasattr(est, "alpha_"):
            report["alpha"] = float(est.alpha_)
    elif method == "permutation":
        from sklearn.inspection import permutation_importance
        from sklearn.model_selection import train_test_split

        strat = y if task == "classification" else None
        try:
            Xa, Xb, ya, yb = train_test_split(Xs, y, test_size=0.25, random_state=seed, stratify=strat)
        except ValueError as e:
            raise InputError(f"permutation: cannot hold out 25% of the rows for scoring ({e})",
                             "give more rows (at least two of every class)") from None
        est = _fit_reporting_warnings(lambda: make_estimator(config.estimator, task, seed).fit(Xa, ya), "the estimator")
        result = permutation_importance(est, Xb, yb, n_repeats=config.n_repeats, random_state=seed, n_jobs=1)
        scores = result.importances_mean
        report["holdout_score"] = float(est.score(Xb, yb))
    if method in SCORED:
        order = np.argsort(-scores, kind="stable")
        mask, cutoff = apply_cutoff(scores, order, config, method)
        return scores, mask, cutoff, report

    # subset methods
    if method == "genetic":
        cv = make_cv(config.cv, y, task, seed)
        scorer = _CVScorer(make_estimator(config.estimator, task, seed), Xs, y, cv, task)
        mask, fit, history = _fit_reporting_warnings(lambda: genetic_search(
            scorer, p, population=config.population, generations=config.generations, penalty=config.penalty,
            seed=seed), "the estimator")
        scores = contributions(scorer, mask)
        report.update(cv_score=scorer(mask), fitness=fit, evaluations=len(scorer.cache),
                      best_fitness_per_generation=history)
        return scores, mask, f"genetic search ({int(mask.sum())} features)", report
    k = config.k if config.k is not None else max(1, p // 2)  # --threshold/--elbow: refused by validate()
    if not 1 <= k <= p:
        raise OptionError(f"--k {k} must be between 1 and the number of features ({p})", f"use --k {max(1, p // 2)}")
    if method == "rfe":
        from sklearn.feature_selection import RFE
        from sklearn.svm import LinearSVC, LinearSVR

        svm = (LinearSVC(random_state=seed, max_iter=20000) if task == "classification"
               else LinearSVR(random_state=seed, max_iter=20000))
        rfe = _fit_reporting_warnings(lambda: RFE(svm, n_features_to_select=1, step=1).fit(Xs, y), "the linear SVM")
        scores = (p - rfe.ranking_ + 1).astype(np.float64)  # rounds survived: best = p
        mask = rfe.ranking_ <= k
        return scores, mask, f"SVM-RFE to k={k}", report
    cv = make_cv(config.cv, y, task, seed)
    estimator = make_estimator(config.estimator, task, seed)
    scorer = _CVScorer(estimator, Xs, y, cv, task)
    if method == "hybrid":
        pre_k = config.pre_k if config.pre_k is not None else min(p, 2 * k)
        if not k <= pre_k <= p:
            raise OptionError(f"--pre-k {pre_k} must be between --k ({k}) and the number of features ({p})",
                              f"use --pre-k {min(p, 2 * k)}")
        scores = filter_scores(config.filter_method, X, y, task, seed)
        pre = np.zeros(p, dtype=bool)
        pre[np.argsort(-scores, kind="stable")[:pre_k]] = True
        mask = pre.copy()
        if k < pre_k:
            inner = _sfs(estimator, Xs[:, pre], y, k, "forward", cv)
            mask[np.flatnonzero(pre)] = inner
        report.update(pre_k=pre_k, filter=config.filter_method, cv_score=scorer(mask))
        return scores, mask, f"{config.filter_method} to {pre_k}, then sfs to k={k}", report
    direction = "forward" if method == "sfs" else "backward"
    mask = _sfs(estimator, Xs, y, k, direction, cv) if k < p else np.ones(p, dtype=bool)
    scores = contributions(scorer, mask)
    report["cv_score"] = scorer(mask)
    return scores, mask, f"{'forward selection' if method == 'sfs' else 'backward elimination'} to k={k}", report


def _sfs(estimator, X, y, k, direction, cv) -> np.ndarray:
    from sklearn.feature_selection import SequentialFeatureSelector

    sfs = SequentialFeatureSelector(estimator, n_features_to_select=k, direction=direction, cv=cv)
    return _fit_reporting_warnings(lambda: sfs.fit(X, y), "the estimator").get_support()


def select_table(table: Table, config: SelectConfig) -> SelectResult:
    """Rank the table's feature columns against the target and keep the selected ones."""
    from dltool.core.device import placed_on
    from dltool.reduce.reduction import check_exclude

    config.validate()
    placed_on(config.device, f"reduce select --method {config.method}")  # checks --device; CPU only
    table, y_raw, task = _target(table, config)
    exclude = list(config.exclude or []) + [config.target]
    check_exclude(table, config.exclude)
    X, names, keep = table.feature_matrix(config.features, exclude, dropna=config.dropna)
    y = _labels(y_raw[keep], task)
    if len(X) < 3:
        raise InputError(f"the table has {len(X)} row{'s' if len(X) != 1 else ''}; feature selection needs at "
                         "least 3", "give a table with more rows")
    if task == "classification" and len(np.unique(y)) < 2:
        raise InputError(f"the target '{config.target}' has a single class", "selection needs at least two classes")
    p = len(names)
    if config.k is not None and config.k > p:
        raise OptionError(f"--k {config.k} is more than the {p} feature columns", f"use --k {p} or fewer")
    from threadpoolctl import threadpool_limits

    # wrappers fit hundreds of small models: threaded BLAS on tiny matrices is several times
    # slower than one thread (measured 4x for a 5-fold logistic CV on 150 x 8 with 2 cores)
    with threadpool_limits(limits=1, user_api="blas"):
        scores, mask, cutoff, extra = select_features(X, y, names, task, config)
    scores = np.asarray(scores, dtype=np.float64)
    order = sorted(range(p), key=lambda j: (not mask[j], -scores[j], j))
    ranking = [{"feature": names[j], "score": float(scores[j]), "rank": r + 1, "selected": bool(mask[j])}
               for r, j in enumerate(order)]
    selected = [names[j] for j in range(p) if mask[j]]
    dropped = {names[j] for j in range(p) if not mask[j]}
    out = Table({n: c[keep] for n, c in table.columns.items() if n not in dropped})
    report = {"method": config.method, "task": task, "n_samples": int(len(X)), "n_features": p,
              "n_selected": len(selected), "cutoff": cutoff, "selected": selected, **extra}
    if config.ranking_path is not None:
        write_ranking(ranking, config.ranking_path)
    return SelectResult(out, ranking, selected, task, cutoff, report)


def write_ranking(ranking: list[dict], path: Path) -> None:
    """{feature, score, rank, selected} per feature, in the format the suffix names (JSON Lines otherwise)."""
    from dltool.core.io import atomic_open
    from dltool.core.output import emit_records

    fmt = {".csv": "csv", ".json": "json"}.get(Path(path).suffix.lower(), "jsonl")
    with atomic_open(path) as f:
        emit_records(ranking, fmt, stream=f)


def summary_lines(result: SelectResult, max_rows: int = 15) -> list[str]:
    r = result.report
    lines = [f"select {r['method']} ({r['task']}, {r['n_samples']} rows): kept {r['n_selected']} of "
             f"{r['n_features']} features — {r['cutoff']}"
             + (f"; cv score {r['cv_score']:.4f}" if "cv_score" in r else "")]
    lines.append(f"{'rank':>4}  {'score':>10}  sel  feature")
    for rec in result.ranking[:max_rows]:
        lines.append(f"{rec['rank']:>4}  {rec['score']:>10.4g}  {'*' if rec['selected'] else ' ':>3}  {rec['feature']}")
    if len(result.ranking) > max_rows:
        lines.append(f"   ... {len(result.ranking) - max_rows} more (all of them with --ranking FILE)")
    return lines
