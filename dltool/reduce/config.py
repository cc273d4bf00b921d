"""What each `dltool reduce` command asks for, as frozen configs (pure Python: the CLI reads its option
defaults from here without importing numpy, so every default is written once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dltool.core.run import RunConfig  # plain Python too: a default below

if TYPE_CHECKING:
    from dltool.core.train import EngineConfig


@dataclass(frozen=True)
class ReduceConfig:
    """Fit `method` (a REDUCERS name) with `params` on a table's features; the side outputs to write."""

    method: str
    params: dict = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    standardize: bool = False
    seed: int = 0
    device: str = "auto"
    save_model: Path | None = None      # the fitted reducer, for `reduce transform`
    report: Path | None = None          # the fit's summary as JSON
    plot: Path | None = None            # scatter of the first two new columns
    color_by: str | None = None         # the column that colours it (default: a label-like column)
    variance_plot: Path | None = None   # PCA: explained variance per component
    given: frozenset[str] | None = None  # the options the user set (None: params off the method's defaults)


@dataclass(frozen=True)
class TransformConfig:
    """Embed a table's rows with a saved reducer."""

    model: Path
    dropna: bool = False
    device: str = "auto"
    plot: Path | None = None
    color_by: str | None = None


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything `dltool reduce autoencoder` needs; `engine` holds the shared training options."""

    engine: EngineConfig
    code_dim: int = 2
    kind: str = "undercomplete"
    hidden: str = "64,32"
    activation: str = "relu"
    scaling: str = "standard"
    sparsity: float = 1e-3
    noise: float = 0.2
    corruption: str = "gaussian"
    contractive: float = 1e-2
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    report: Path | None = None
    plot: Path | None = None
    color_by: str | None = None
    run: RunConfig = RunConfig()  # batch size, validation split, run folder, device
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)
