"""Ranking metrics at k over a top-k recommendation matrix.

Conventions (they follow microsoft/recommenders' ``python_evaluation`` so numbers are
comparable with its published MovieLens tables):

* ``top_k`` is an ``int`` array ``[n_users, >=k]`` of item indices, best first; ``-1``
  pads a row that has fewer than ``k`` recommendations (a pad is never a hit).
* ``relevant`` gives each row's relevant items: a sequence of item-index collections
  (row ``u`` of ``top_k`` pairs with entry ``u``) or a ``scipy.sparse`` matrix
  ``[n_users, n_items]`` whose non-zeros are the relevant items. Relevance is binary.
* Ranking metrics are averaged over the users with at least one relevant item; users
  without any are not evaluated (the same rows are used for coverage and novelty).

Per evaluated user, with ``hit_i = 1`` when the item at rank ``i`` (1-based) is relevant
and ``R`` the number of relevant items:

* ``precision@k = sum_i hit_i / k``
* ``recall@k    = sum_i hit_i / R``
* ``ndcg@k      = DCG / IDCG`` with ``DCG = sum_{i<=k} hit_i / ln(1 + i)`` and
  ``IDCG = sum_{i<=min(k, R)} 1 / ln(1 + i)`` (natural-log discount; the base cancels).
* ``map@k       = sum_{i<=k} hit_i * precision@i / R``: the divisor is *all* ``R``
  relevant items, not ``min(k, R)``; this is microsoft/recommenders' ``map`` (the
  function its benchmark table reports as MAP), which follows Spark MLlib.

Catalog-level metrics over the evaluated users' lists:

* ``coverage = |distinct recommended items| / n_items``
* ``novelty  = mean over recommended (user, item) entries of -log2(c_i / C)``, where
  ``c_i`` is item ``i``'s interaction count in the *training* data and ``C`` the total
  training interaction count (Castells et al. 2011, as in microsoft/recommenders'
  ``novelty``). Items never seen in training are counted as ``c_i = 1`` so the value
  stays finite. Higher means less popular recommendations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import scipy.sparse as sp

Relevant = Union[Sequence[Sequence[int]], Sequence[np.ndarray], sp.spmatrix, sp.sparray]

METRIC_NAMES: tuple[str, ...] = ("ndcg", "recall", "precision", "map", "coverage", "novelty")


def metric_keys(k: int = 10) -> tuple[str, ...]:
    """The keys :func:`evaluate` returns, in display order."""
    return (f"ndcg@{k}", f"recall@{k}", f"precision@{k}", f"map@{k}", "coverage", "novelty")


def relevant_matrix(relevant: Relevant, n_users: int, n_items: int | None = None) -> sp.csr_matrix:
    """Binary CSR ``[n_users, n_items]`` of relevant items from any accepted form."""
    if sp.issparse(relevant):
        mat = sp.csr_matrix(relevant, dtype=np.float32)
        if mat.shape[0] != n_users:
            raise ValueError(f"relevant has {mat.shape[0]} rows, top_k has {n_users}")
        mat.eliminate_zeros()
        mat.data[:] = 1.0
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat
    if len(relevant) != n_users:
        raise ValueError(f"relevant has {len(relevant)} entries, top_k has {n_users} rows")
    cols = [np.unique(np.asarray(list(r) if isinstance(r, (set, frozenset)) else r, dtype=np.int64)) for r in relevant]
    lengths = np.fromiter((len(c) for c in cols), dtype=np.int64, count=n_users)
    indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    if n_items is None:
        n_items = int(indices.max()) + 1 if indices.size else 0
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))


def _as_top_k(top_k: np.ndarray, k: int) -> np.ndarray:
    """First ``k`` columns of ``top_k`` as int64, padded with -1 if narrower."""
    arr = np.asarray(top_k)
    if arr.ndim != 2:
        raise ValueError("top_k must be a 2-D array [n_users, k]")
    arr = arr[:, :k].astype(np.int64, copy=False)
    if arr.shape[1] < k:
        pad = np.full((arr.shape[0], k - arr.shape[1]), -1, dtype=np.int64)
        arr = np.hstack([arr, pad])
    return arr


def hit_matrix(top_k: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean ``[n_users, k]``: is the item at each rank relevant for that user."""
    n_users, k = top_k.shape
    n_items = max(relevant.shape[1], int(top_k.max(initial=-1)) + 1)
    rel = relevant.tocoo()
    rel_keys = np.sort(rel.row.astype(np.int64) * n_items + rel.col.astype(np.int64))
    valid = top_k >= 0
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, top_k, 0)
    return np.isin(keys, rel_keys, assume_unique=False) & valid


def _ranking_per_user(top_k: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    """Per-user ndcg/recall/precision/map for the rows with at least one relevant item."""
    n_rel = np.diff(relevant.indptr)
    rows = np.flatnonzero(n_rel > 0)
    hits = hit_matrix(top_k[rows], relevant[rows]).astype(np.float64)
    n_rel = n_rel[rows].astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log1p(ranks)
    dcg = hits @ discount
    ideal_cum = np.concatenate([[0.0], np.cumsum(discount)])
    idcg = ideal_cum[np.minimum(n_rel, k).astype(np.int64)]
    n_hits = hits.sum(axis=1)
    precision_at_i = np.cumsum(hits, axis=1) / ranks
    return {
        "rows": rows,
        "ndcg": dcg / idcg,
        "recall": n_hits / n_rel,
        "precision": n_hits / k,
        "map": (hits * precision_at_i).sum(axis=1) / n_rel,
    }


def per_user_metrics(top_k: np.ndarray, relevant: Relevant, k: int = 10) -> dict[str, np.ndarray]:
    """Per-user ``ndcg``, ``recall``, ``precision`` and ``map`` at k, plus ``users``: the
    row indices (users with at least one relevant item) the values belong to. Useful
    for standard errors and paired comparisons between models."""
    tk = _as_top_k(top_k, k)
    values = _ranking_per_user(tk, relevant_matrix(relevant, tk.shape[0]), k)
    values["users"] = values.pop("rows")
    return values


def ndcg_at_k(top_k: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """Mean binary nDCG@k with a natural-log discount (see module docstring)."""
    return _mean_metric("ndcg", top_k, relevant, k)


def recall_at_k(top_k: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """Mean share of each user's relevant items found in the top k."""
    return _mean_metric("recall", top_k, relevant, k)


def precision_at_k(top_k: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """Mean share of the top k that is relevant (divisor k, even for short lists)."""
    return _mean_metric("precision", top_k, relevant, k)


def map_at_k(top_k: np.ndarray, relevant: Relevant, k: int = 10) -> float:
    """Mean average precision over the top k, divided by all of a user's relevant items."""
    return _mean_metric("map", top_k, relevant, k)


def _mean_metric(name: str, top_k: np.ndarray, relevant: Relevant, k: int) -> float:
    tk = _as_top_k(top_k, k)
    rel = relevant_matrix(relevant, tk.shape[0])
    values = _ranking_per_user(tk, rel, k)[name]
    return float(values.mean()) if values.size else 0.0


def catalog_coverage(top_k: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` catalog that appears in at least one list."""
    items = np.asarray(top_k)
    items = items[items >= 0]
    return float(np.unique(items).size / n_items) if n_items > 0 else 0.0


def novelty(top_k: np.ndarray, train_item_counts: np.ndarray) -> float:
    """Mean ``-log2(c_i / C)`` over recommended entries (see module docstring)."""
    counts = np.asarray(train_item_counts, dtype=np.float64)
    total = counts.sum()
    items = np.asarray(top_k)
    items = items[items >= 0]
    if items.size == 0 or total <= 0:
        return 0.0
    item_counts = np.ones(items.size)
    known = items < counts.size
    item_counts[known] = np.maximum(counts[items[known]], 1.0)
    return float(np.mean(-np.log2(item_counts / total)))


def evaluate(
    top_k: np.ndarray,
    relevant: Relevant,
    train_item_counts: np.ndarray,
    n_items: int,
    k: int = 10,
) -> dict[str, float]:
    """All metrics at once: keys ``ndcg@k, recall@k, precision@k, map@k, coverage, novelty``.

    Users (rows) without relevant items are skipped everywhere, including coverage and
    novelty, so those describe exactly the lists that were scored.
    """
    tk = _as_top_k(top_k, k)
    rel = relevant_matrix(relevant, tk.shape[0], n_items)
    per_user = _ranking_per_user(tk, rel, k)
    evaluated = tk[per_user["rows"]]

    def mean(name: str) -> float:
        values = per_user[name]
        return float(values.mean()) if values.size else 0.0

    return {
        f"ndcg@{k}": mean("ndcg"),
        f"recall@{k}": mean("recall"),
        f"precision@{k}": mean("precision"),
        f"map@{k}": mean("map"),
        "coverage": catalog_coverage(evaluated, n_items),
        "novelty": novelty(evaluated, train_item_counts),
    }
