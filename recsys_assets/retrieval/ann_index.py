"""Approximate-nearest-neighbour index over item embeddings (faiss; no Dagster).

Item and user embeddings from the two-tower model are L2-normalised, so the inner
product is the cosine similarity and every index here uses the inner-product metric.

API
---
- ``IndexSpec(kind, params)``: ``"flat"`` (exact ``IndexFlatIP``), ``"ivf_flat"``
  (``IndexIVFFlat``, inner product; params ``nlist``, ``nprobe``) or ``"hnsw"``
  (``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``; params ``M``,
  ``efConstruction``, ``efSearch``).
- ``choose_index_spec(n_items, dim)``: the default spec for a catalog size.
- ``build_index(item_embeddings, item_ids, spec) -> AnnIndex``.
- ``AnnIndex.search(queries, k) -> (scores, item_ids)`` with *external* item ids.
- ``AnnIndex.to_bytes()`` / ``AnnIndex.from_bytes(b)``: one self-describing blob
  (faiss index + id map + spec as JSON) for a versioned folder in object storage.
- ``exact_top_k``, ``recall_at_k`` and ``tune_search_params`` (raise ``nprobe`` /
  ``efSearch`` until a recall target is met on real queries).
- ``clustered_unit_embeddings``: the synthetic data the defaults were measured on.

How the defaults were chosen (measured, not guessed)
----------------------------------------------------
Data: ``clustered_unit_embeddings`` -- 64-d float32, Gaussian clusters around random
unit centres (256 by default; 64 and 16 as harder cases), per-item noise of norm ~1
(cosine ~0.7 to its centre), normalised; queries come from the same mixture with
another seed (users sit near the tastes they watch). Batches of 1000 queries, k=10,
faiss-cpu 1.15.1 on 2 CPU cores shared with other jobs (load average 3-7 during the
runs, so absolute q/s moves by up to ~2x between runs; ratios within one run are
stable). Reproduce with ``benchmarks/retrieval_index.py`` (``--compare hnsw``,
``--clusters 64``).

Exact ``IndexFlatIP`` throughput falls as 1/n: ~11-21k q/s at 10k items, ~9k at 25k,
~4-5k at 50-60k, ~0.9-1.7k at 100k, ~70-220 at 1M.

* **flat up to 50k items at 64-d (threshold scales with 64/dim, floor 25k).** Up to
  there a batch of 1000 queries takes <= ~0.2 s (>= ~5k q/s: a million users scored
  in minutes on two cores), recall is exactly 1.0, the build is a memcpy and there is
  nothing to train or tune. Below ~25k items IVF cannot even train ~4*sqrt(n) lists
  with the >= 39 points per list faiss asks for, hence the floor. Past 50k exact
  cost keeps growing linearly while IVF is already ~10x faster (60k items: 42k vs
  4k q/s at recall 0.9999), ~15x at 100k and ~30-60x at 1M.
* **IVF-flat above that: nlist = round(4*sqrt(n)), nprobe = max(16, nlist // 64).**
  Training (faiss's spherical k-means, 10 iterations, on <= 64 sampled points per
  list) plus adding took ~4-8 s at 100k and ~26-70 s at 1M. ``nprobe`` is what buys
  recall and the need grows with the number of lists a cluster is split into
  (nlist / clusters). recall@10 by nprobe:

  ================  ======  =====  =====  =====  =====  =====
  data              nlist   8      16     32     48     64
  ================  ======  =====  =====  =====  =====  =====
  100k, 256 clus.   1265    0.998  1.000  1.000  1.000  1.000
  100k,  64 clus.   1265    0.754  0.971  1.000  1.000  1.000
  100k,  16 clus.   1265    0.414  0.612  0.836  0.944  0.988
  1M,   256 clus.   4000    0.831  0.990  1.000  1.000  1.000
  1M,    64 clus.   4000    0.453  0.675  0.892  0.980  0.999
  ================  ======  =====  =====  =====  =====  =====

  ``nlist // 64`` (19 at 100k, 62 at 1M; ~1.6% of the lists, still ~30x less work
  than exact at 1M) keeps recall@10 >= 0.95 with margin for catalogs with at least
  ~64 taste clusters (measured: 0.989 at 100k and 0.998 at 1M with 64 clusters, 1.000
  with 256). Coarser structure (16 clusters of 6k+ items each) needs more probes --
  that is what ``tune_search_params`` is for.
* **HNSW is supported but not chosen by default.** Side by side in one run
  (M=32, efConstruction=64, efSearch=128; 256 clusters): at 100k it built in 18.7 s vs
  IVF's 8.1 s and served 10k vs 23k q/s (both recall 1.0); at 1M it built in 183 s vs
  68 s, served 2.5k q/s at recall 0.953 vs IVF (nprobe 31) 4.4k q/s at 1.000, and its
  artifact is twice the size (536 vs 273 MB: the graph adds 2*M*4 bytes per item).
  An earlier sweep at 1M needed efSearch >= 128 for recall >= 0.95 (64 gave 0.91):
  graph search struggles to hop between tight clusters. Batched offline scoring is
  our workload; pass ``IndexSpec.hnsw()`` explicitly if low-latency single queries
  at very high QPS ever matter more.

The recall of IVF/HNSW depends on the real embedding distribution, so the asset
that builds the index should verify (and if needed fix) it on a sample of real user
embeddings with ``tune_search_params`` rather than trust the synthetic defaults.

Search results: rows are sorted by descending score. Slots faiss could not fill
(k larger than the catalog, or too few items in the probed IVF lists) hold item id
``-1`` and score ``-inf``; they are always at the end of a row.
"""

from __future__ import annotations

import json
import math
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

INDEX_KINDS = ("flat", "ivf_flat", "hnsw")

#: Largest catalog served by exact search at 64 dimensions (scaled by 64/dim).
FLAT_MAX_ITEMS_AT_64D = 50_000
#: Below this IVF cannot train ~4*sqrt(n) lists with >= 39 points each: always flat.
MIN_IVF_ITEMS = 25_000
#: Training sample per IVF list (faiss warns below 39; more only slows k-means).
IVF_TRAIN_POINTS_PER_LIST = 64
#: Defaults for an explicitly requested HNSW index (see the module docstring).
HNSW_DEFAULTS = {"M": 32, "efConstruction": 64, "efSearch": 128}

_PARAM_KEYS = {
    "flat": set(),
    "ivf_flat": {"nlist", "nprobe"},
    "hnsw": {"M", "efConstruction", "efSearch"},
}
_REQUIRED_KEYS = {"flat": set(), "ivf_flat": {"nlist", "nprobe"}, "hnsw": set(HNSW_DEFAULTS)}

_MAGIC = b"RSANNIDX"
_FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")  # magic, format version, header length


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class IndexSpec:
    """Which faiss index to build and with which (build and search) parameters."""

    kind: str
    params: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; expected one of {INDEX_KINDS}")
        params = dict(self.params)
        if self.kind == "hnsw":
            params = {**HNSW_DEFAULTS, **params}
        unknown = set(params) - _PARAM_KEYS[self.kind]
        if unknown:
            raise ValueError(f"unknown params for {self.kind!r}: {sorted(unknown)}")
        missing = _REQUIRED_KEYS[self.kind] - set(params)
        if missing:
            raise ValueError(f"missing params for {self.kind!r}: {sorted(missing)}")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"param {key}={value!r} must be a positive integer")
            params[key] = int(value)
        object.__setattr__(self, "params", params)

    @classmethod
    def flat(cls) -> IndexSpec:
        return cls("flat")

    @classmethod
    def ivf_flat(cls, nlist: int, nprobe: int) -> IndexSpec:
        return cls("ivf_flat", {"nlist": nlist, "nprobe": nprobe})

    @classmethod
    def hnsw(cls, M: int = 32, efConstruction: int = 64, efSearch: int = 128) -> IndexSpec:  # noqa: N803
        return cls("hnsw", {"M": M, "efConstruction": efConstruction, "efSearch": efSearch})

    def with_params(self, **params: int) -> IndexSpec:
        return IndexSpec(self.kind, {**self.params, **params})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        return cls(data["kind"], dict(data.get("params", {})))

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind}({inner})"


def flat_max_items(dim: int) -> int:
    """Largest catalog that ``choose_index_spec`` serves exactly at this dimension."""
    return max(MIN_IVF_ITEMS, FLAT_MAX_ITEMS_AT_64D * 64 // max(int(dim), 1))


def ivf_params_for(n_items: int) -> dict[str, int]:
    """Default IVF parameters: nlist = round(4*sqrt(n)), nprobe = max(16, nlist // 64)."""
    nlist = max(1, min(int(n_items), int(round(4 * math.sqrt(n_items)))))
    nprobe = min(nlist, max(16, nlist // 64))
    return {"nlist": nlist, "nprobe": nprobe}


def choose_index_spec(n_items: int, dim: int) -> IndexSpec:
    """Exact search for small catalogs, IVF-flat for large ones (reasons: module docstring)."""
    if n_items < 1 or dim < 1:
        raise ValueError(f"need n_items >= 1 and dim >= 1, got n_items={n_items}, dim={dim}")
    if n_items <= flat_max_items(dim):
        return IndexSpec.flat()
    return IndexSpec("ivf_flat", ivf_params_for(n_items))


# -------------------------------------------------------------------------- index


def _as_matrix(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, dim), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has dimension {arr.shape[1]}, the index has {dim}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _search_parameters(spec: IndexSpec, k: int) -> faiss.SearchParameters | None:
    # Per-call parameters leave the shared index untouched (safe for concurrent searches).
    # (faiss's bundled type stubs lag its SWIG API, hence the ignores.)
    if spec.kind == "ivf_flat":
        nprobe = min(spec.params["nprobe"], spec.params["nlist"])
        return faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[call-arg]
    if spec.kind == "hnsw":
        # efSearch below k would silently return fewer than k neighbours.
        ef_search = max(spec.params["efSearch"], k)
        return faiss.SearchParametersHNSW(efSearch=ef_search)  # type: ignore[attr-defined]
    return None


@dataclass(eq=False)  # identity semantics: comparing faiss indexes/arrays is meaningless
class AnnIndex:
    """A faiss index over item embeddings plus the map from row position to item id.

    ``faiss_index`` stores vectors in row order; ``item_ids[row]`` is the external id.
    Search parameters (``nprobe``/``efSearch``) come from ``spec.params`` at every
    call, so changing ``spec`` (``set_search_params``) needs no rebuild.
    """

    faiss_index: faiss.Index
    item_ids: np.ndarray
    spec: IndexSpec
    build_seconds: float
    faiss_version: str = faiss.__version__

    @property
    def dim(self) -> int:
        return int(self.faiss_index.d)

    @property
    def n_items(self) -> int:
        return int(self.faiss_index.ntotal)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items by inner product: ``(scores float32[nq, k], item_ids int64[nq, k])``.

        A 1-D query is treated as one row. Unfillable slots are ``(-inf, -1)`` at the
        end of their row.
        """
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = int(k)
        q = _as_matrix(queries, "queries", self.dim)
        params = _search_parameters(self.spec, k)
        if params is None:
            scores, rows = self.faiss_index.search(q, k)
        else:
            scores, rows = self.faiss_index.search(q, k, params=params)
        missing = rows < 0
        ids = self.item_ids[np.where(missing, 0, rows)]
        ids[missing] = -1
        scores = scores.astype(np.float32, copy=False)
        scores[missing] = -np.inf
        return scores, ids

    def set_search_params(self, **params: int) -> None:
        """Change query-time parameters (``nprobe`` for IVF, ``efSearch`` for HNSW)."""
        allowed = {"ivf_flat": {"nprobe"}, "hnsw": {"efSearch"}}.get(self.spec.kind, set())
        bad = set(params) - allowed
        if bad:
            raise ValueError(f"{sorted(bad)} are not search-time params of a {self.spec.kind!r} index")
        self.spec = self.spec.with_params(**params)

    def metadata(self) -> dict[str, Any]:
        """Plain JSON-able description (for Dagster metadata and the artifact header)."""
        return {
            "kind": self.spec.kind,
            "params": dict(self.spec.params),
            "n_items": self.n_items,
            "dim": self.dim,
            "build_seconds": round(float(self.build_seconds), 4),
            "faiss_version": self.faiss_version,
        }

    # ---------------------------------------------------------------- persistence

    def to_bytes(self) -> bytes:
        """``RSANNIDX`` | format version | JSON header | int64 ids (LE) | faiss index."""
        index_bytes = faiss.serialize_index(self.faiss_index).tobytes()
        ids_bytes = np.ascontiguousarray(self.item_ids, dtype="<i8").tobytes()
        header = {
            **self.metadata(),
            "spec": self.spec.to_dict(),
            "build_seconds": float(self.build_seconds),
            "ids_nbytes": len(ids_bytes),
            "index_nbytes": len(index_bytes),
        }
        header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
        prefix = _PREFIX.pack(_MAGIC, _FORMAT_VERSION, len(header_bytes))
        return b"".join([prefix, header_bytes, ids_bytes, index_bytes])

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> AnnIndex:
        buf = memoryview(data)
        if len(buf) < _PREFIX.size:
            raise ValueError("not an ANN index artifact: too short")
        magic, version, header_len = _PREFIX.unpack_from(buf, 0)
        if magic != _MAGIC:
            raise ValueError("not an ANN index artifact: bad magic bytes")
        if version != _FORMAT_VERSION:
            raise ValueError(f"unsupported ANN index format version {version}")
        pos = _PREFIX.size
        header = json.loads(bytes(buf[pos : pos + header_len]).decode("utf-8"))
        pos += header_len
        ids_end = pos + int(header["ids_nbytes"])
        index_end = ids_end + int(header["index_nbytes"])
        if len(buf) != index_end:
            raise ValueError(f"ANN index artifact is {len(buf)} bytes, header says {index_end}")
        item_ids = np.frombuffer(buf[pos:ids_end], dtype="<i8").astype(np.int64)
        faiss_index = faiss.deserialize_index(np.frombuffer(buf[ids_end:index_end], dtype=np.uint8))
        if faiss_index.ntotal != len(item_ids) or faiss_index.d != header["dim"]:
            raise ValueError("ANN index artifact is inconsistent (ids/index size or dim)")
        return cls(
            faiss_index=faiss_index,
            item_ids=item_ids,
            spec=IndexSpec.from_dict(header["spec"]),
            build_seconds=float(header["build_seconds"]),
            faiss_version=str(header.get("faiss_version", "")),
        )


def build_index(item_embeddings: Any, item_ids: Any, spec: IndexSpec | None = None) -> AnnIndex:
    """Build ``spec`` (default ``choose_index_spec``) over L2-normalised item embeddings.

    ``item_ids`` (int64, unique) are what ``search`` returns. Raises ``ValueError`` on
    shape/dtype problems, duplicate ids, non-finite or non-unit-norm embeddings (so
    that inner product really is cosine).
    """
    x = _as_matrix(item_embeddings, "item_embeddings")
    ids = np.asarray(item_ids)
    n, dim = x.shape
    if n == 0:
        raise ValueError("cannot build an index over zero items")
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"item_ids must be an integer array of shape ({n},), got {ids.dtype} {ids.shape}")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if np.any(ids < 0):
        raise ValueError("item_ids must be >= 0 (-1 marks an empty result slot)")
    if len(np.unique(ids)) != n:
        raise ValueError("item_ids must be unique")
    if not np.all(np.isfinite(x)):
        raise ValueError("item_embeddings contain NaN or inf")
    norms = np.linalg.norm(x, axis=1)
    if np.max(np.abs(norms - 1.0)) > 1e-3:
        raise ValueError("item_embeddings must be L2-normalised (inner product = cosine)")
    spec = spec or choose_index_spec(n, dim)

    start = time.perf_counter()
    if spec.kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif spec.kind == "ivf_flat":
        nlist = spec.params["nlist"]
        if nlist > n:
            raise ValueError(f"nlist={nlist} exceeds the number of items ({n})")
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST  # faiss subsamples (seeded)
        index.cp.min_points_per_centroid = 1  # small catalogs: train anyway, no warning spam
        index.train(x)  # faiss's Python wrapper keeps `quantizer` alive with `index`
    else:  # hnsw
        index = faiss.IndexHNSWFlat(dim, spec.params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.params["efConstruction"]
    index.add(x)
    build_seconds = time.perf_counter() - start
    return AnnIndex(faiss_index=index, item_ids=ids, spec=spec, build_seconds=build_seconds)


# --------------------------------------------------------------------- evaluation


def exact_top_k(
    queries: Any, item_embeddings: Any, item_ids: Any, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k (faiss ``IndexFlatIP``): ``(scores, item_ids)``."""
    x = _as_matrix(item_embeddings, "item_embeddings")
    exact = AnnIndex(
        faiss_index=faiss.IndexFlatIP(x.shape[1]),
        item_ids=np.ascontiguousarray(item_ids, dtype=np.int64),
        spec=IndexSpec.flat(),
        build_seconds=0.0,
    )
    if exact.item_ids.shape != (x.shape[0],):
        raise ValueError("item_ids must have one id per embedding row")
    exact.faiss_index.add(x)
    return exact.search(queries, k)


def recall_at_k(index: AnnIndex, queries: Any, exact_ids: np.ndarray, k: int = 10) -> float:
    """Mean over queries of ``|ANN top-k ∩ exact top-k| / k`` (``-1`` slots never match)."""
    exact_ids = np.asarray(exact_ids)
    if exact_ids.ndim != 2 or exact_ids.shape[1] < k:
        raise ValueError(f"exact_ids must be (n_queries, >= {k}), got {exact_ids.shape}")
    _, found = index.search(queries, k)
    if found.shape[0] != exact_ids.shape[0]:
        raise ValueError("queries and exact_ids have different numbers of rows")
    truth = exact_ids[:, :k]
    hits = 0
    for start in range(0, len(found), 8192):  # bounded (rows, k, k) temporaries
        f, t = found[start : start + 8192, :, None], truth[start : start + 8192, None, :]
        # ids are unique within a row, so each found id matches at most one true id
        hits += int(((f == t) & (f >= 0)).any(axis=2).sum())
    return hits / (k * len(found)) if len(found) else 0.0


def tune_search_params(
    index: AnnIndex,
    queries: Any,
    exact_ids: np.ndarray,
    *,
    k: int = 10,
    target_recall: float = 0.95,
    max_value: int | None = None,
) -> float:
    """Double ``nprobe`` (IVF) / ``efSearch`` (HNSW) until recall@k >= target.

    Starts from the current value, updates ``index.spec`` in place and returns the
    recall reached (which may stay below target if ``max_value``, default ``nlist``
    for IVF and 4096 for HNSW, is hit). A flat index is exact: returns its recall.
    """
    recall = recall_at_k(index, queries, exact_ids, k)
    if index.spec.kind == "flat":
        return recall
    key = "nprobe" if index.spec.kind == "ivf_flat" else "efSearch"
    limit = max_value or (index.spec.params["nlist"] if key == "nprobe" else 4096)
    while recall < target_recall and index.spec.params[key] < limit:
        index.set_search_params(**{key: min(limit, index.spec.params[key] * 2)})
        recall = recall_at_k(index, queries, exact_ids, k)
    return recall


# ------------------------------------------------------------------ synthetic data


def clustered_unit_embeddings(
    n: int,
    dim: int,
    *,
    n_clusters: int = 256,
    noise: float = 1.0,
    seed: int = 0,
    cluster_seed: int = 0,
    chunk_size: int = 131_072,
) -> np.ndarray:
    """Synthetic L2-normalised float32 embeddings from a mixture of clusters.

    Cluster centres are random unit vectors drawn from ``cluster_seed`` (share it
    between items and queries); each row is ``centre + noise * N(0, I/dim)``,
    normalised, with cluster and noise drawn from ``seed``. ``noise=1`` puts a row at
    cosine ~0.7 from its centre. Generated in chunks of ``chunk_size`` rows so a
    million rows need no temporary copies beyond one chunk.
    """
    centres = np.random.default_rng(cluster_seed).standard_normal((n_clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(noise / math.sqrt(dim))
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        chunk = out[start:stop]
        labels = rng.integers(0, n_clusters, stop - start)
        chunk[:] = rng.standard_normal((stop - start, dim), dtype=np.float32)
        chunk *= scale
        chunk += centres[labels]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


__all__ = [
    "AnnIndex",
    "IndexSpec",
    "INDEX_KINDS",
    "build_index",
    "choose_index_spec",
    "clustered_unit_embeddings",
    "exact_top_k",
    "flat_max_items",
    "ivf_params_for",
    "recall_at_k",
    "tune_search_params",
]

