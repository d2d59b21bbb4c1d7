"""Ingest throughput of ``raw_events``: simulated landing files -> validated Delta table.

    python benchmarks/ingest.py [--sizes 1M,10M] [--days 30] [--workdir DIR]

For each size, simulates roughly that many events (with the default 1% bad lines, 1%
re-deliveries, 2% late arrivals) into a fresh landing zone, then materializes every
partition of ``raw_events`` in ONE Dagster run (the single-run backfill policy), with
Spark ``local[*]``. Reports lines ingested per second of the asset's wall time and the
peak resident memory of the process tree (Python driver + Spark JVM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import shutil
import tempfile
from pathlib import Path

from _common import PeakMemory, gib, print_table, timer

END_DAY = dt.date(2024, 3, 31)
# The benchmark's own days must be partitions of the Definitions it loads.
os.environ.setdefault("RECSYS_PARTITIONS_START", "2023-01-01")

# Events per user over the default 30 days with the default behaviour (measured: ~216 per user).
EVENTS_PER_USER_30D = 216


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def sim_config(target_events: int, days: int):
    """A simulated platform of about ``target_events`` events over ``days`` days."""
    from recsys_assets.sources.simulator import SimulationConfig

    n_users = max(100, round(target_events / (EVENTS_PER_USER_30D * days / 30)))
    return SimulationConfig(n_users=n_users, n_items=max(500, n_users // 10), n_days=days, end_day=END_DAY, seed=3)


def _write_simulation(cfg, landing_root: str, queue) -> None:
    from recsys_assets.sources.landing import LandingStore
    from recsys_assets.sources.simulator import simulate, write_landing

    queue.put(write_landing(simulate(cfg), LandingStore(landing_root)))


def simulate_into(cfg, landing_root: str) -> dict:
    """Simulate and write the landing zone in a child process, so the benchmark process's
    memory reflects only the pipeline it measures."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_write_simulation, args=(cfg, landing_root, results))
    child.start()
    while True:
        try:
            summary = results.get(timeout=5)
            break
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"simulation failed (exit {child.exitcode})") from None
    child.join()
    if child.exitcode:
        raise RuntimeError(f"simulation failed (exit {child.exitcode})")
    return summary


def bench_resources(root: Path) -> dict:
    """Lakehouse, landing zone, Spark and Feast of a benchmark, all under ``root``."""
    from resources.feast import FeastResource
    from resources.lakehouse import LakehouseResource
    from resources.landing import LandingZoneResource
    from resources.spark import SparkResource

    return {
        "lakehouse": LakehouseResource(root_uri=str(root / "lakehouse")),
        "landing": LandingZoneResource(root_uri=str(root / "landing")),
        "spark": SparkResource(),
        "feast": FeastResource(registry_path=str(root / "feast" / "registry.db"), sqlite_path=str(root / "feast" / "online.db")),
    }


def run_size(target_events: int, days: int, workdir: Path) -> dict:
    from recsys_assets.definitions import build_defs
    from recsys_assets.runner import run_job
    end = END_DAY
    cfg = sim_config(target_events, days)
    root = workdir / f"ingest-{target_events}"
    shutil.rmtree(root, ignore_errors=True)
    resources = bench_resources(root)
    landing = resources["landing"]

    with timer() as t_sim:
        summary = simulate_into(cfg, landing.root_uri)
    landing_bytes = sum(f.size for f in landing.store().list_files("events"))

    defs = build_defs(resources)
    start = end - dt.timedelta(days=days - 1)
    with PeakMemory() as mem, timer() as t_run:
        result = run_job(defs, "ingestion_job", days=(start, end))
    meta = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }["raw_events"]
    asset_seconds = meta["wall_seconds"].value
    lines = meta["lines_read"].value
    row = {
        "target": f"{target_events:,}",
        "lines_read": lines,
        "valid_events": meta["dagster/row_count"].value,
        "landing_MiB": landing_bytes / 2**20,
        "files": summary["files_written"],
        "simulate_s": t_sim["seconds"],
        "raw_events_s": asset_seconds,
        "run_s": t_run["seconds"],
        "events_per_s": lines / asset_seconds,
        "phases_s": " ".join(f"{k}={v}" for k, v in meta["phase_seconds"].value.items()),
        "peak_total_GiB": gib(mem.peak_total),
        "peak_python_GiB": gib(mem.peak_python),
    }
    shutil.rmtree(root, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated event counts, e.g. 200k,1M,10M")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="recsys-bench-ingest-"))
    rows = []
    for size in args.sizes.split(","):
        rows.append(run_size(parse_size(size), args.days, workdir))
        print_table(rows[-1:], list(rows[-1]))
    print("\nraw_events ingest throughput (one run over all partitions, Spark local[*]):")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
