"""Spark feature computation and online read latency.

    python benchmarks/features.py [--sizes 1M,10M] [--days 30] [--reads 300]

For each size: simulate about that many events, ingest them (one run), then time the
features job over every day in ONE run (user_daily_activity, user_features,
item_features, item_similarities, trending_items with Spark local[*]; then the online
store): wall time per asset, events/s and peak memory of the process tree. Then, on the
materialized online store, the latency of ``get_online_features`` (user_features, 16
features) for 1 user and for 100 users: p50/p99 over ``--reads`` calls, sqlite (the
default) and Redis (production) side by side when a Redis server answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PeakMemory, gib, print_table, timer
from ingest import END_DAY, bench_resources, parse_size, sim_config, simulate_into

os.environ.setdefault("RECSYS_PARTITIONS_START", "2023-01-01")
FEATURE_ASSETS = ("user_daily_activity", "user_features", "item_features", "item_similarities", "trending_items", "online_features")
ONLINE_FEATURES = [
    f"user_features:{f}"
    for f in (
        "events_1d", "events_7d", "events_30d", "positives_1d", "positives_7d", "positives_30d", "plays_7d", "plays_30d",
        "completes_30d", "watch_seconds_30d", "ratings_30d", "mean_rating_30d", "active_days_30d",
        "days_since_last_activity", "distinct_items_30d", "genre_affinity",
    )
]  # fmt: skip


def step_seconds(result) -> dict[str, float]:
    out = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            out[event.step_key] = event.event_specific_data.duration_ms / 1000
    return out


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except Exception:
        return False


def read_latency(store, user_ids: list[int], batch: int, reads: int, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(reads):
        rows = [{"user_id": int(u)} for u in rng.choice(user_ids, size=batch, replace=False)]
        start = time.perf_counter()
        store.get_online_features(features=ONLINE_FEATURES, entity_rows=rows).to_dict()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run_size(target_events: int, days: int, reads: int, workdir: Path) -> tuple[dict, list[dict]]:
    from recsys_assets.definitions import build_defs
    from recsys_assets.runner import run_job
    from resources.feast import FeastResource

    cfg = sim_config(target_events, days)
    n_users = cfg.n_users
    root = workdir / f"features-{target_events}"
    shutil.rmtree(root, ignore_errors=True)
    resources = bench_resources(root)
    landing, lakehouse, feast = resources["landing"], resources["lakehouse"], resources["feast"]
    simulate_into(cfg, landing.root_uri)
    defs = build_defs(resources)
    start = END_DAY - dt.timedelta(days=days - 1)
    run_job(defs, "ingestion_job", days=(start, END_DAY), log_level="WARNING")
    events = lakehouse.read("raw_events", columns=["event_date"]).num_rows
    run_job(defs, "daily_job", days=(END_DAY, END_DAY), log_level="WARNING")  # registry applied; warm JVM

    with PeakMemory() as mem, timer() as t:
        result = run_job(defs, "features_job", days=(start, END_DAY), log_level="WARNING")
    steps = step_seconds(result)
    spark_seconds = sum(steps.get(a, 0.0) for a in FEATURE_ASSETS[:-1])
    row = {
        "target": f"{target_events:,}",
        "events": events,
        "users": n_users,
        "items": cfg.n_items,
        **{f"{a}_s": steps.get(a, float("nan")) for a in FEATURE_ASSETS},
        "spark_features_s": spark_seconds,
        "events_per_s": events / spark_seconds,
        "run_s": t["seconds"],
        "peak_total_GiB": gib(mem.peak_total),
    }

    user_ids = lakehouse.read("user_features", columns=["user_id"]).column("user_id").unique().to_pylist()
    latency = []
    stores = [("sqlite", feast)]
    if redis_available():
        redis_feast = FeastResource(
            project=f"bench{target_events}",
            registry_path=str(root / "feast" / "registry_redis.db"),
            online_store_type="redis",
            redis_connection_string="127.0.0.1:6379,db=3",
        )
        redis_feast.apply(lakehouse.root_uri)
        from recsys_assets.feature_store.assets import materialize_days

        materialize_days(redis_feast.store(), ["user_features"], END_DAY - dt.timedelta(days=1), END_DAY)
        stores.append(("redis", redis_feast))
    for name, resource in stores:
        store = resource.store()
        store.get_online_features(features=ONLINE_FEATURES, entity_rows=[{"user_id": user_ids[0]}])  # warm up
        for batch in (1, 100):
            p50, p99 = read_latency(store, user_ids, batch, reads if batch == 1 else max(50, reads // 3))
            latency.append({"target": f"{target_events:,}", "online_store": name, "users_per_call": batch, "p50_ms": p50, "p99_ms": p99})
    shutil.rmtree(root, ignore_errors=True)
    return row, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reads", type=int, default=300, help="calls per latency measurement (1 user)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="recsys-bench-features-"))
    rows, latencies = [], []
    for size in args.sizes.split(","):
        row, latency = run_size(parse_size(size), args.days, args.reads, workdir)
        rows.append(row)
        latencies += latency
        print_table([row], list(row))
        print_table(latency, list(latency[0]))
    print("\nSpark feature computation (one run over all days):")
    print_table(rows, list(rows[0]))
    print("\nget_online_features latency:")
    print_table(latencies, list(latencies[0]))


if __name__ == "__main__":
    main()
