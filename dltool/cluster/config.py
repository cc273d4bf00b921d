"""What each `dltool cluster` command asks for, as frozen configs (pure Python: the CLI reads its option
defaults from here without importing numpy, so every default is written once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dltool.core.run import RunConfig  # plain Python too: a default below

if TYPE_CHECKING:
    from dltool.core.train import EngineConfig


@dataclass(frozen=True)
class ClusterConfig:
    """Fit `method` (a METHODS name) with `params` on a table's features; the pictures to write."""

    method: str
    params: dict = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    standardize: bool = False
    seed: int = 0
    device: str = "auto"
    plot: Path | None = None          # scatter of the clusters
    dendrogram: Path | None = None    # agglomerative: the merge tree
    given: frozenset[str] | None = None  # the options the user set (None: params off the method's defaults)


@dataclass(frozen=True)
class ChooseKConfig:
    ks: tuple[int, ...]
    method: str = "elbow"
    n_init: int = 10
    max_iter: int = 300
    sample: int | None = 10_000
    seed: int = 0
    device: str = "auto"
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    standardize: bool = False
    plot: Path | None = None


@dataclass(frozen=True)
class EvaluateConfig:
    labels: str = "cluster"
    truth: str | None = None
    sample: int | None = 10_000
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class DeepConfig:
    """Everything `dltool cluster deep` needs; `engine` holds the shared training options (its epochs
    are the clustering phase's)."""

    engine: EngineConfig
    n_clusters: int = 8
    code_dim: int = 10
    hidden: str = "512,256"
    activation: str = "relu"
    scaling: str = "minmax"
    pretrain_epochs: int = 100
    update_interval: int = 0
    tol: float = 1e-3
    alpha: float = 1.0
    recon_weight: float = 0.1
    n_init: int = 20
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    plot: Path | None = None
    run: RunConfig = RunConfig(val_split=0.0)  # batch size, run folder, device; no validation split
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)
