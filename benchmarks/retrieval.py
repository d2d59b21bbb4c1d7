"""Retrieval benchmark: training time per epoch, the ANN index, writing recommendations.

    python benchmarks/retrieval.py [--sizes 10k,100k,1M] [--users 100000] [--skip-index]

1. Two-tower training time per epoch (CPU, 1 torch thread) on MovieLens-100K (75% of
   ratings) and on a synthetic platform-sized set (1M pairs, 50k users, 10k items),
   with and without side features.
2. The faiss index for 10k, 100k and 1M items (synthetic clustered unit-norm 64-d
   embeddings): kind chosen, build time, queries/s vs exact, recall@10 vs exact
   (``benchmarks/retrieval_index.py``).
3. Writing recommendations for 100k users: ANN candidates (300), filters, diversity,
   exploration and cold start (``generate_lists``, the code of the
   ``user_recommendations`` asset), then the Delta write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, print_table, timer

ML100K = ROOT.parent / "shared" / "data" / "ml-100k"


def epoch_times(pairs, n_users, n_items, user_features=None, item_features=None, epochs=3) -> float:
    from recsys_assets.training.two_tower import TwoTowerConfig, train_two_tower

    trained = train_two_tower(
        pairs, n_users, n_items, TwoTowerConfig(max_epochs=epochs, num_threads=1), user_features=user_features, item_features=item_features
    )
    return float(np.median([h["seconds"] for h in trained.history]))


def training_rows() -> list[dict]:
    from recsys_assets.evaluation.protocols import load_movielens, msr_stratified_split
    from recsys_assets.training.two_tower import TowerFeatures

    rows = []
    if (ML100K / "u.data").exists():
        ratings = load_movielens(ML100K)
        train, _ = msr_stratified_split(ratings)
        users = {u: n for n, u in enumerate(sorted(ratings.user_id.unique()))}
        items = {i: n for n, i in enumerate(sorted(ratings.item_id.unique()))}
        pairs = (train.user_id.map(users).to_numpy(), train.item_id.map(items).to_numpy())
        rows.append({"data": "ml-100k (75%)", "pairs": len(train), "users": len(users), "items": len(items), "features": "ids", "median_epoch_s": epoch_times(pairs, len(users), len(items))})
    rng = np.random.default_rng(0)
    n_users, n_items, n_pairs = 50_000, 10_000, 1_000_000
    pop = rng.zipf(1.3, size=n_items).astype(float)
    pairs = (rng.integers(0, n_users, n_pairs), rng.choice(n_items, size=n_pairs, p=pop / pop.sum()))
    base = {"data": "synthetic", "pairs": n_pairs, "users": n_users, "items": n_items}
    rows.append({**base, "features": "ids", "median_epoch_s": epoch_times(pairs, n_users, n_items)})
    uf = TowerFeatures(dense=rng.normal(size=(n_users, 23)).astype(np.float32), categorical=rng.integers(0, 4, size=(n_users, 3)))
    itf = TowerFeatures(dense=rng.normal(size=(n_items, 22)).astype(np.float32), categorical=rng.integers(0, 6, size=(n_items, 2)))
    rows.append({**base, "features": "ids+features", "median_epoch_s": epoch_times(pairs, n_users, n_items, uf, itf)})
    for r in rows:
        r["pairs_per_s"] = r["pairs"] / r["median_epoch_s"]
    return rows


def recommendation_rows(n_users: int, n_items: int = 10_000, workdir: Path | None = None) -> dict:
    from recsys_assets.recommendations.assets import generate_lists
    from recsys_assets.recommendations.inputs import CatalogState, Histories
    from recsys_assets.recommendations.ranking import Catalog, RankingRules
    from recsys_assets.retrieval.ann_index import build_index, clustered_unit_embeddings
    from recsys_assets.vocabulary import GENRES, MATURITY_RATINGS, REGIONS
    from resources.lakehouse import LakehouseResource

    rng = np.random.default_rng(1)
    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    item_vectors = clustered_unit_embeddings(n_items, 64, seed=1)
    user_vectors = clustered_unit_embeddings(n_users, 64, seed=2)
    user_ids = np.arange(1, n_users + 1, dtype=np.int64)
    catalog = Catalog.build(
        item_ids,
        [GENRES[g] for g in rng.integers(0, len(GENRES), n_items)],
        [MATURITY_RATINGS[r] for r in rng.integers(0, 5, n_items)],
        rng.random(n_items) > 0.03,
        rng.random(n_items) < 0.01,
    )
    popular = list(item_ids[:500])
    state = CatalogState(catalog, popular, dt.date(2024, 3, 31))
    warm_users = user_ids[rng.random(n_users) > 0.05]
    watched = {int(u): set(rng.choice(item_ids, 20).tolist()) for u in warm_users}
    histories = Histories(watched, {}, {u: list(v)[:3] for u, v in watched.items()})
    trending = {r: list(rng.choice(item_ids, 50, replace=False)) for r in (*REGIONS, "GLOBAL")}
    region = {int(u): REGIONS[int(u) % len(REGIONS)] for u in user_ids}
    kids = {int(u): bool(u % 12 == 0) for u in user_ids}
    pool = sorted(catalog.exploration_pool)
    pool_vectors = item_vectors[np.searchsorted(item_ids, pool)]
    index = build_index(item_vectors, item_ids)
    with timer() as t_lists:
        table, cold = generate_lists(
            user_ids, user_vectors, index, histories, state, trending, region, kids, pool, pool_vectors, RankingRules(), 300, "bench"
        )
    root = Path(tempfile.mkdtemp(prefix="recsys-bench-recs-", dir=workdir))
    lakehouse = LakehouseResource(root_uri=str(root))
    with timer() as t_write:
        lakehouse.overwrite_where("user_recommendations", table, "model_version", "bench")
    shutil.rmtree(root, ignore_errors=True)
    return {
        "users": n_users,
        "items": n_items,
        "index": index.spec.kind,
        "rows": table.num_rows,
        "cold_start_users": cold,
        "generate_s": t_lists["seconds"],
        "delta_write_s": t_write["seconds"],
        "total_s": t_lists["seconds"] + t_write["seconds"],
        "users_per_s": n_users / (t_lists["seconds"] + t_write["seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1M", help="catalog sizes for the index benchmark")
    parser.add_argument("--users", type=int, default=100_000, help="users to write recommendations for")
    parser.add_argument("--skip-index", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    print("1. two-tower training time per epoch (CPU, 1 thread):")
    rows = training_rows()
    print_table(rows, list(rows[0]))

    if not args.skip_index:
        from retrieval_index import format_table, parse_size, run_index_benchmark

        print("\n2. faiss index (synthetic clustered 64-d unit vectors, 1000 queries, k=10):")
        print(format_table(run_index_benchmark([parse_size(s) for s in args.sizes.split(",")])))

    print(f"\n3. recommendations for {args.users:,} users:")
    row = recommendation_rows(args.users)
    print_table([row], list(row))
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
