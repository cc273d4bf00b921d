"""The series bar (issue 26): one origin per series, every network beside the statsmodels baselines.

For co2 (monthly means, H=12, m=12), elnino (monthly, H=12, m=12) and sunspots (yearly, H=10, m=11), from
sample_data/series (statsmodels' datasets, see its SOURCE.md): each network trains with its default options
on all but the last H points (`--holdout H`), then `forecast eval` scores it on those H points; `series
baseline` scores the classical methods on the same split. Every network's default is the median of five
members (`--ensemble 5`), five trainings each. MASE is scaled by the in-sample seasonal naive error. Prints every model's MASE and the best network's ratio to the best baseline (the bar: <= 1.10);
`nbeats/interpretable` (nbeats with --stacks interpretable) and `nbeats:N` (nbeats with --ensemble N) are not
default options: shown but not ranked.

    python benchmarks/series.py [--models mlp,lstm,gru,tcn,transformer,nbeats,nbeats:5] [--sets co2,elnino,sunspots]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data" / "series"
SETS = {"co2": ("co2.csv", "month", "co2", 12, 12), "elnino": ("elnino.csv", "month", "temperature", 12, 12),
        "sunspots": ("sunspots.csv", "year", "sunactivity", 10, 11)}
MODELS = ("mlp", "lstm", "gru", "tcn", "transformer", "nbeats", "nbeats:1", "nbeats/interpretable")
#: a model's options beyond --model: NAME/STACKS is --stacks STACKS, NAME:N is --ensemble N
DEFAULTS = tuple(m for m in MODELS if "/" not in m and ":" not in m)


def model_args(name: str) -> tuple[str, ...]:
    name, _, ensemble = name.partition(":")
    model, _, stacks = name.partition("/")
    return ("--model", model, *(("--stacks", stacks) if stacks else ()), *(("--ensemble", ensemble) if ensemble else ()))


def dltool(*args) -> dict:
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args), "--format", "json", "-q"],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    models = args.models.split(",")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            file, time_col, target, H, m = SETS[name]
            data = DATA / file
            common = ("--time", time_col, "--target", target, "--horizon", H, "--season", m)
            t = time.perf_counter()
            base = dltool("series", "baseline", data, *common, "--interval", 0)
            row = {k: v["mase"] for k, v in base["baselines"].items()}
            row["baselines_s"] = time.perf_counter() - t
            for model in models:
                run = Path(tmp) / f"{name}-{model.replace('/', '-').replace(':', '-')}"
                t = time.perf_counter()
                dltool("series", "forecast", "train", data, *common, "--holdout", H, *model_args(model),
                       "--seed", args.seed, "--out", run, "--device", "cpu")
                row[model] = dltool("series", "forecast", "eval", run / "model.pt", data, "--baselines", "",
                                    "--device", "cpu")["mase"]
                row[f"{model}_s"] = time.perf_counter() - t
            rows[name] = row
            best_b = min(("naive", "seasonal_naive", "ets", "arima"), key=row.get)
            best_n = min([m for m in models if m in DEFAULTS] or models, key=row.get)
            print(f"{name}: " + "  ".join(f"{k}={row[k]:.3f}" for k in (*base["baselines"], *models))
                  + f"  | best network {best_n} {row[best_n]:.3f} / best baseline {best_b} {row[best_b]:.3f}"
                  f" = {row[best_n] / row[best_b]:.2f}", flush=True)
            print("  seconds: " + "  ".join(f"{k[:-2]}={v:.0f}" for k, v in row.items() if k.endswith("_s")),
                  flush=True)


if __name__ == "__main__":
    main()
