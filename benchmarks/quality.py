"""Offline quality benchmark: the two-tower model against baselines under two protocols.

    .venv/bin/python benchmarks/quality.py [--data DIR] [--json OUT]

``DIR`` is any MovieLens-100K-format folder (``u.data``); the default is the shared copy
at ``../shared/data/ml-100k`` relative to the project root. Both protocols run:

* ``msr_stratified``: microsoft/recommenders' random 75/25 split stratified by item,
  seed 42 (comparable with its published ML-100K table).
* ``temporal``: train before a cutoff day, test on the days after it (by default the
  cutoff is the day holding the 80th percentile of events; ``--test-days`` overrides).

For every model a small grid is evaluated on a validation split carved from the
training data only (same protocol), the best configuration by validation nDCG@k is
refit on the full training data, and the test set is scored once. The two-tower's
epoch count is the early-stopping epoch found on validation. Under the temporal
protocol the two-tower may also apply a popularity-shift bias (recent vs training-period
item popularity, see ``popularity_shift_bias``), again chosen on validation; the table
notes what it scores without it. ``--json`` writes ``{protocol: {model: {metric: value}}}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recsys_assets.evaluation import baselines as bl  # noqa: E402
from recsys_assets.evaluation.metrics import evaluate, metric_keys, per_user_metrics  # noqa: E402
from recsys_assets.evaluation.protocols import (  # noqa: E402
    ITEM,
    TIMESTAMP,
    Interactions,
    build_interactions,
    load_movielens,
    msr_stratified_split,
    temporal_cutoff,
    temporal_split,
    to_datetime_utc,
    validation_split,
)
from recsys_assets.training.two_tower import (  # noqa: E402
    TwoTowerConfig,
    popularity_shift_bias,
    train_two_tower,
)

MODELS: tuple[str, ...] = ("two_tower", "most_popular", "cooccurrence", "als", "ease")
PROTOCOLS: tuple[str, ...] = ("temporal", "msr_stratified")

# Validation grids (small on purpose: the whole benchmark should take minutes on 2 cores).
COOCCURRENCE_GRID: dict[str, list[Any]] = {"similarity": ["jaccard", "cosine", "lift"]}
ALS_GRID: dict[str, list[Any]] = {
    "factors": [8, 16, 32, 64],
    "regularization": [0.1, 1.0, 10.0],
    "alpha": [1.0, 2.0, 5.0, 10.0],
}
EASE_GRID: dict[str, list[Any]] = {"lambda_": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]}
TEMPERATURES: tuple[float, ...] = (0.15, 0.2, 0.25, 0.3)
SHIFT_WINDOWS_DAYS: tuple[int, ...] = (14, 30)
SHIFT_STRENGTHS: tuple[float, ...] = (0.0, 1.0, 2.0)
RECENT_WINDOWS_DAYS: tuple[int, ...] = (7, 14, 30)


@dataclass
class Stage:
    """One train/evaluate pair on the protocol's vocabulary."""

    data: Interactions
    frame: pd.DataFrame  # the training events (for recent popularity)

    @property
    def users(self) -> np.ndarray:
        return self.data.test_users


@dataclass
class ProtocolRun:
    name: str
    description: str
    test: Stage
    valid: Stage
    temporal: bool


def grid(spec: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(spec)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec[k] for k in keys))]


def prepare(name: str, df: pd.DataFrame, args: argparse.Namespace) -> ProtocolRun:
    """Split, carve validation from train, and index both on one vocabulary."""
    if name == "msr_stratified":
        train, test = msr_stratified_split(df, ratio=0.75, seed=42, filter_by="item")
        fit, valid = validation_split(train, "msr_stratified", ratio=args.valid_ratio)
        description = "random 75/25 stratified by item, seed 42; validation 80/20 of train (seed 43)"
    else:
        kwargs = {"test_days": args.test_days} if args.test_days else {"test_fraction": args.test_fraction}
        cutoff = temporal_cutoff(df, **kwargs)
        train, test = temporal_split(df, cutoff=cutoff)
        fit, valid = validation_split(train, "temporal", **kwargs)
        valid_cutoff = to_datetime_utc(valid[TIMESTAMP]).min().floor("D") if len(valid) else None
        description = (
            f"train < {cutoff.date()}, test >= {cutoff.date()}; validation cutoff "
            f"{valid_cutoff.date() if valid_cutoff is not None else '-'}"
        )
    full = build_interactions(train, test)
    val = build_interactions(fit, valid, user_ids=full.user_ids, item_ids=full.item_ids)
    return ProtocolRun(name, description, Stage(full, train), Stage(val, fit), temporal=name == "temporal")


def score_lists(stage: Stage, ranked: np.ndarray, k: int) -> dict[str, float]:
    users = stage.users
    return evaluate(ranked, stage.data.test[users], stage.data.train_item_counts, stage.data.n_items, k=k)


def ndcg_se(stage: Stage, ranked: np.ndarray, k: int) -> float:
    """Standard error of the mean per-user nDCG@k."""
    values = per_user_metrics(ranked, stage.data.test[stage.users], k)["ndcg"]
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def recent_counts(stage: Stage, days: int) -> np.ndarray:
    """Item counts over the last ``days`` days of the stage's training events."""
    times = to_datetime_utc(stage.frame[TIMESTAMP])
    recent = stage.frame[(times >= times.max() - pd.Timedelta(days=days)).to_numpy()]
    idx = pd.Index(stage.data.item_ids).get_indexer(recent[ITEM].to_numpy())
    return np.bincount(idx[idx >= 0], minlength=stage.data.n_items).astype(np.float64)


def run_baseline(
    factory: Callable[..., bl.Recommender],
    params: dict[str, Any],
    stage: Stage,
    k: int,
) -> np.ndarray:
    model = factory(**params).fit(stage.data.train)
    return bl.recommend(model, stage.data.train, stage.users, k=k)


def tune_baseline(
    factory: Callable[..., bl.Recommender],
    candidates: Iterable[dict[str, Any]],
    valid: Stage,
    k: int,
    select: str,
) -> tuple[dict[str, Any], float]:
    best: tuple[float, dict[str, Any]] | None = None
    for params in candidates:
        value = score_lists(valid, run_baseline(factory, params, valid, k), k)[select]
        if best is None or value > best[0]:
            best = (value, params)
    assert best is not None
    return best[1], best[0]


def two_tower_config(args: argparse.Namespace, **overrides: Any) -> TwoTowerConfig:
    base = TwoTowerConfig(
        embedding_dim=args.embedding_dim,
        lr=1e-2,
        batch_size=1024,
        max_epochs=args.max_epochs,
        patience=args.patience,
        eval_k=args.k,
        seed=args.seed,
        num_threads=args.threads,
    )
    return dataclasses.replace(base, **overrides)


def tune_two_tower(run: ProtocolRun, args: argparse.Namespace, select: str) -> tuple[dict[str, Any], float]:
    """Temperature (with early stopping on validation recall) and, under the temporal
    protocol, the popularity-shift bias, all chosen on validation."""
    valid = run.valid
    shifts = [(w, s) for w in SHIFT_WINDOWS_DAYS for s in SHIFT_STRENGTHS if s > 0] if run.temporal else []
    shifts = [(0, 0.0)] + shifts
    best: tuple[float, dict[str, Any]] | None = None
    for temperature in TEMPERATURES:
        cfg = two_tower_config(args, temperature=temperature)
        model = train_two_tower(
            valid.data.train_pairs(), valid.data.n_users, valid.data.n_items, cfg, valid=valid.data.test_pairs()
        )
        for window, strength in shifts:
            bias = (
                popularity_shift_bias(valid.data.train_item_counts, recent_counts(valid, window), strength)
                if strength > 0
                else None
            )
            ranked = model.top_k(valid.users, args.k, exclude=valid.data.train, item_bias=bias)
            value = score_lists(valid, ranked, args.k)[select]
            params = {
                "temperature": temperature,
                "epochs": int(model.best_epoch or cfg.max_epochs),
                "shift_window_days": window,
                "shift_strength": strength,
            }
            if best is None or value > best[0]:
                best = (value, params)
    assert best is not None
    return best[1], best[0]


def recent_popularity_reference(run: ProtocolRun, k: int, select: str) -> tuple[int, float]:
    """Most-popular over a recent window of the training events: how much of the temporal
    test is explained by what is trending. Window chosen on validation."""

    def ranked(stage: Stage, days: int) -> np.ndarray:
        scores = np.tile(recent_counts(stage, days), (stage.users.size, 1))
        return bl.top_k(scores, k, exclude=stage.data.train[stage.users])

    window = max(RECENT_WINDOWS_DAYS, key=lambda d: score_lists(run.valid, ranked(run.valid, d), k)[select])
    return window, score_lists(run.test, ranked(run.test, window), k)[select]


def mean_metrics(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in results])) for key in results[0]}


def run_protocol(run: ProtocolRun, args: argparse.Namespace) -> dict[str, Any]:
    k = args.k
    select = f"ndcg@{k}"
    seeds = [args.seed + s for s in range(args.seeds)]
    metrics: dict[str, dict[str, float]] = {}
    ses: dict[str, float] = {}
    chosen: dict[str, dict[str, Any]] = {}
    valid_scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    notes: list[str] = []

    baselines: dict[str, tuple[Callable[..., bl.Recommender], list[dict[str, Any]], bool]] = {
        "most_popular": (bl.MostPopular, [{}], False),
        "cooccurrence": (bl.ItemCooccurrence, grid(COOCCURRENCE_GRID), False),
        "als": (bl.ALS, [dict(p, seed=args.seed, num_threads=args.threads) for p in grid(ALS_GRID)], True),
        "ease": (bl.EASE, grid(EASE_GRID), False),
    }
    for name, (factory, candidates, seeded) in baselines.items():
        started = time.perf_counter()
        params, valid_scores[name] = tune_baseline(factory, candidates, run.valid, k, select)
        runs = []
        for seed in seeds if seeded else seeds[:1]:
            ranked = run_baseline(factory, dict(params, seed=seed) if seeded else params, run.test, k)
            runs.append(score_lists(run.test, ranked, k))
        metrics[name] = mean_metrics(runs)
        ses[name] = ndcg_se(run.test, ranked, k)
        chosen[name] = {key: v for key, v in params.items() if key not in ("seed", "num_threads")}
        seconds[name] = time.perf_counter() - started
        print(f"  {name}: {len(candidates)} configs in {seconds[name]:.1f} s", flush=True)

    started = time.perf_counter()
    params, valid_scores["two_tower"] = tune_two_tower(run, args, select)
    runs, plain = [], []
    test = run.test
    bias = None
    if params["shift_strength"] > 0:
        bias = popularity_shift_bias(
            test.data.train_item_counts, recent_counts(test, params["shift_window_days"]), params["shift_strength"]
        )
    for seed in seeds:
        cfg = two_tower_config(args, temperature=params["temperature"], max_epochs=params["epochs"], seed=seed)
        model = train_two_tower(test.data.train_pairs(), test.data.n_users, test.data.n_items, cfg)
        ranked = model.top_k(test.users, k, exclude=test.data.train, item_bias=bias)
        runs.append(score_lists(test, ranked, k))
        if bias is not None:
            plain.append(score_lists(test, model.top_k(test.users, k, exclude=test.data.train), k)[select])
    metrics["two_tower"] = mean_metrics(runs)
    ses["two_tower"] = ndcg_se(test, ranked, k)
    chosen["two_tower"] = dict(
        params, embedding_dim=args.embedding_dim, lr=1e-2, batch_size=1024, logq_correction=True
    )
    seconds["two_tower"] = time.perf_counter() - started
    print(f"  two_tower: {len(TEMPERATURES)} temperatures in {seconds['two_tower']:.1f} s", flush=True)
    if plain:
        notes.append(
            f"two_tower without the popularity-shift bias (same model): {select} {np.mean(plain):.4f}"
        )
    if run.temporal:
        window, value = recent_popularity_reference(run, k, select)
        notes.append(
            f"reference (not a benchmark model): most-popular over the last {window} days of train "
            f"(window chosen on validation): {select} {value:.4f}"
        )
    return {
        "metrics": metrics,
        "se": ses,
        "chosen": chosen,
        "valid": valid_scores,
        "seconds": seconds,
        "notes": notes,
    }


def format_table(results: dict[str, dict[str, Any]], k: int) -> str:
    keys = metric_keys(k)
    width = 13
    header = f"{'protocol':<16}{'metric':<14}" + "".join(f"{m:>{width}}" for m in MODELS)
    lines = [header, "-" * len(header)]
    for protocol, res in results.items():
        for i, key in enumerate(keys):
            label = protocol if i == 0 else ""
            row = "".join(f"{res['metrics'][m][key]:>{width}.4f}" for m in MODELS)
            lines.append(f"{label:<16}{key:<14}{row}")
            if key == f"ndcg@{k}":
                se = "".join(f"{'±' + format(res['se'][m], '.4f'):>{width}}" for m in MODELS)
                lines.append(f"{'':<16}{'  (std err)':<14}{se}")
        valid = "".join(f"{res['valid'][m]:>{width}.4f}" for m in MODELS)
        lines.append(f"{'':<16}{'valid ndcg':<14}{valid}")
        secs = "".join(f"{res['seconds'][m]:>{width}.1f}" for m in MODELS)
        lines.append(f"{'':<16}{'seconds':<14}{secs}")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--json", type=Path, default=None, help="write {protocol: {model: {metric: value}}}")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="temporal: share of events after the cutoff")
    parser.add_argument("--test-days", type=int, default=None, help="temporal: last N days are test (overrides)")
    parser.add_argument("--valid-ratio", type=float, default=0.8, help="msr_stratified: train share kept for fitting")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seeds", type=int, default=1, help="average the final two_tower/als over this many seeds")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/implicit threads; 1 by default: on a busy 2-core machine two torch threads "
        "were measured ~10x slower than one (OpenMP threads wait on each other)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    df = load_movielens(args.data)
    print(f"data: {args.data} ({len(df)} events, {df['user_id'].nunique()} users, {df['item_id'].nunique()} items)")
    results: dict[str, dict[str, Any]] = {}
    for name in args.protocols:
        run = prepare(name, df, args)
        t, v = run.test.data, run.valid.data
        print(
            f"\n[{name}] {run.description}\n"
            f"  test: {t.train.nnz} train pairs, {t.test.nnz} test pairs, {run.test.users.size} users evaluated\n"
            f"  validation: {v.train.nnz} fit pairs, {v.test.nnz} validation pairs, {run.valid.users.size} users",
            flush=True,
        )
        results[name] = run_protocol(run, args)
        for model in MODELS:
            print(f"  chosen {model}: {results[name]['chosen'][model]}", flush=True)
        for note in results[name]["notes"]:
            print(f"  note: {note}")
    print()
    print(format_table(results, args.k))
    print(f"total runtime {time.perf_counter() - started:.0f} s")
    out = {p: {m: res["metrics"][m] for m in MODELS} for p, res in results.items()}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
