"""Benchmark of the ANN item index: chosen kind, build time, queries/s and recall@10.

For each catalog size it generates synthetic clustered unit-norm embeddings (the
data ``recsys_assets.retrieval.ann_index`` was tuned on; 1M rows are generated in
chunks), builds the index ``choose_index_spec`` picks, and measures it side by side
with exact search (``IndexFlatIP``) in the same process: the two are timed
alternately on the same query batch, median of ``repeats`` runs each, so both see the
same machine load. Recall@10 is measured against the exact top-10.

    .venv/bin/python benchmarks/retrieval_index.py                  # 10k, 100k, 1M
    .venv/bin/python benchmarks/retrieval_index.py --sizes 10k,100k
    .venv/bin/python benchmarks/retrieval_index.py --compare hnsw    # + HNSW defaults
    .venv/bin/python benchmarks/retrieval_index.py --clusters 64     # harder for IVF
    .venv/bin/python benchmarks/retrieval_index.py --json out.json

Importable (``benchmarks/retrieval.py`` uses it): ``run_index_benchmark(sizes, ...)``
returns one dict per size, ``format_table(rows)`` renders them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import faiss
import numpy as np

from recsys_assets.retrieval.ann_index import (
    AnnIndex,
    IndexSpec,
    build_index,
    choose_index_spec,
    clustered_unit_embeddings,
    ivf_params_for,
    recall_at_k,
)

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_THREADS = 2  # the shared machine has two cores
ID_OFFSET = 1_000_000_000  # external ids != row positions, so the id map is exercised


def parse_size(text: str) -> int:
    """``"10k"`` -> 10000, ``"1M"`` -> 1000000, ``"25000"`` -> 25000."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    value = int(float(number) * factor)
    if value < 1:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def _time_search(index: AnnIndex, queries: np.ndarray, k: int) -> float:
    start = time.perf_counter()
    index.search(queries, k)
    return time.perf_counter() - start


def _spec_for_kind(kind: str, n_items: int, dim: int) -> IndexSpec:
    """The default spec of ``kind`` for a catalog (for ``compare``)."""
    if kind == "flat":
        return IndexSpec.flat()
    if kind == "ivf_flat":
        return IndexSpec("ivf_flat", ivf_params_for(n_items))
    if kind == "hnsw":
        return IndexSpec.hnsw()
    raise ValueError(f"unknown index kind {kind!r}")


def run_index_benchmark(
    sizes: Iterable[int] = DEFAULT_SIZES,
    dim: int = 64,
    n_queries: int = 1000,
    seed: int = 0,
    *,
    k: int = 10,
    repeats: int = 5,
    compare: Sequence[str] = (),
    n_clusters: int = 256,
    noise: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark the default index for each catalog size; one result dict per index.

    ``compare`` adds the default spec of other kinds (``"flat"``, ``"ivf_flat"``,
    ``"hnsw"``) for each size, measured in the same alternation; their rows have
    ``chosen=False``. ``n_clusters``/``noise`` shape the synthetic data
    (``clustered_unit_embeddings``). Keys: ``n_items, dim, n_queries, k, kind, params,
    chosen, build_seconds, ann_qps, exact_qps, speedup, recall_at_k, artifact_mb,
    generate_seconds, load_avg_1m, threads``.
    """
    rows: list[dict[str, Any]] = []
    def embeddings(n: int, data_seed: int) -> np.ndarray:
        return clustered_unit_embeddings(
            n, dim, n_clusters=n_clusters, noise=noise, seed=data_seed, cluster_seed=seed
        )

    queries = embeddings(n_queries, seed + 2)
    for n_items in sizes:
        n_items = int(n_items)
        if log:
            log(f"[{n_items:,} items] generating embeddings ...")
        t0 = time.perf_counter()
        items = embeddings(n_items, seed + 1)
        item_ids = np.arange(ID_OFFSET, ID_OFFSET + n_items, dtype=np.int64)
        gen_seconds = time.perf_counter() - t0

        chosen = choose_index_spec(n_items, dim)
        specs = [chosen] + [
            _spec_for_kind(kind, n_items, dim) for kind in dict.fromkeys(compare) if kind != chosen.kind
        ]
        exact = build_index(items, item_ids, IndexSpec.flat())
        indexes: list[AnnIndex] = []
        for spec in specs:
            if log:
                log(f"[{n_items:,} items] building {spec} ...")
            indexes.append(exact if spec.kind == "flat" else build_index(items, item_ids, spec))
        del items
        gc.collect()

        _, exact_ids = exact.search(queries, k)
        recalls = [recall_at_k(index, queries, exact_ids, k) for index in indexes]

        # Warm up, then time exact search and every index alternately on the same batch.
        _time_search(exact, queries, k)
        for index in indexes:
            if index is not exact:
                _time_search(index, queries, k)
        exact_times: list[float] = []
        ann_times: list[list[float]] = [[] for _ in indexes]
        for _ in range(repeats):
            exact_times.append(_time_search(exact, queries, k))
            for times, index in zip(ann_times, indexes):
                if index is not exact:
                    times.append(_time_search(index, queries, k))
        exact_qps = n_queries / statistics.median(exact_times)
        # a flat index *is* the exact baseline: report the same timings, speedup 1.0
        ann_times = [exact_times if index is exact else t for index, t in zip(indexes, ann_times)]

        for index, times, recall in zip(indexes, ann_times, recalls):
            ann_qps = n_queries / statistics.median(times)
            row = {
                "n_items": n_items,
                "dim": dim,
                "n_queries": n_queries,
                "k": k,
                "kind": index.spec.kind,
                "params": dict(index.spec.params),
                "chosen": index.spec == chosen,
                "build_seconds": index.build_seconds,
                "ann_qps": ann_qps,
                "exact_qps": exact_qps,
                "speedup": ann_qps / exact_qps,
                "recall_at_k": recall,
                "artifact_mb": len(index.to_bytes()) / 1e6,
                "generate_seconds": gen_seconds,
                "load_avg_1m": os.getloadavg()[0],
                "threads": faiss.omp_get_max_threads(),
            }
            rows.append(row)
            if log:
                log(
                    f"[{n_items:,} items] {index.spec}: build {index.build_seconds:.2f}s, "
                    f"{ann_qps:,.0f} q/s (exact {exact_qps:,.0f} q/s), recall@{k} {recall:.4f}"
                )
        del exact, indexes
        gc.collect()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of ``run_index_benchmark`` rows."""
    k = rows[0]["k"] if rows else 10
    header = (
        f"| items | kind | params | build s | ANN q/s | exact q/s | speedup | recall@{k} | artifact MB |"
    )
    lines = [header, "|" + "---|" * 9]
    compared = any(not r.get("chosen", True) for r in rows)

    def mark(r: dict[str, Any]) -> str:
        return " (chosen)" if compared and r.get("chosen", True) else ""

    for r in rows:
        params = ", ".join(f"{key}={val}" for key, val in sorted(r["params"].items())) or "-"
        lines.append(
            f"| {r['n_items']:,} | {r['kind']}{mark(r)} | {params} | {r['build_seconds']:.2f} "
            f"| {r['ann_qps']:,.0f} | {r['exact_qps']:,.0f} | {r['speedup']:.1f}x "
            f"| {r['recall_at_k']:.4f} | {r['artifact_mb']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated catalog sizes, e.g. 10k,100k,1M (default: all three)",
    )
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000, help="query batch size")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per index (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="faiss OpenMP threads")
    parser.add_argument(
        "--compare",
        default="",
        help="also measure these kinds' defaults at every size, e.g. hnsw or flat,ivf_flat,hnsw",
    )
    parser.add_argument("--clusters", type=int, default=256, help="clusters in the synthetic data")
    parser.add_argument("--noise", type=float, default=1.0, help="noise norm around cluster centres")
    parser.add_argument("--json", dest="json_path", help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    faiss.omp_set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    rows = run_index_benchmark(
        sizes,
        dim=args.dim,
        n_queries=args.queries,
        seed=args.seed,
        repeats=args.repeats,
        compare=[c.strip() for c in args.compare.split(",") if c.strip()],
        n_clusters=args.clusters,
        noise=args.noise,
        log=log,
    )
    print(format_table(rows))
    print(
        f"\n{args.dim}-d unit-norm embeddings in {args.clusters} clusters (noise {args.noise}), batch of {args.queries} queries, "
        f"median of {args.repeats}; faiss {faiss.__version__}, {args.threads} threads; "
        f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - start:.0f}s"
    )
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
