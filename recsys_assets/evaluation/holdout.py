"""Offline evaluation of model versions on the platform's own time-based holdout.

The split comes from ``training_examples``: models fit on ``train``; ``validation`` was
used for early stopping; ``test`` (the last days) is the holdout. Items a user engaged
with in train or validation are "already seen" and removed from every model's list;
every other test positive is relevant. All models are scored on the same users in the
same run, so the comparison is side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_assets.evaluation.baselines import ALS, EASE, MostPopular, top_k
from recsys_assets.evaluation.metrics import evaluate
from recsys_assets.training.artifacts import ModelArtifact
from recsys_assets.training.examples import TEST, TRAIN, VALIDATION


@dataclass
class Holdout:
    user_ids: np.ndarray  # index space of the candidate model
    item_ids: np.ndarray
    train: sp.csr_matrix  # what models fit on
    seen: sp.csr_matrix  # train + validation: never recommended
    relevant: sp.csr_matrix  # test positives not seen before
    test_users: np.ndarray  # user indices with at least one relevant item

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def train_item_counts(self) -> np.ndarray:
        return np.asarray(self.train.sum(axis=0)).ravel()


def _matrix(frame: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix:
    u = np.searchsorted(user_ids, frame["user_id"].to_numpy())
    i = np.searchsorted(item_ids, frame["item_id"].to_numpy())
    known = (u < len(user_ids)) & (i < len(item_ids))
    known &= (user_ids[np.minimum(u, len(user_ids) - 1)] == frame["user_id"].to_numpy()) & (
        item_ids[np.minimum(i, len(item_ids) - 1)] == frame["item_id"].to_numpy()
    )
    m = sp.csr_matrix((np.ones(known.sum(), dtype=np.float32), (u[known], i[known])), shape=(len(user_ids), len(item_ids)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def build_holdout(examples: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> Holdout:
    train = _matrix(examples[examples["split"] == TRAIN], user_ids, item_ids)
    seen = _matrix(examples[examples["split"].isin([TRAIN, VALIDATION])], user_ids, item_ids)
    test = _matrix(examples[examples["split"] == TEST], user_ids, item_ids)
    relevant = (test - test.multiply(seen)).tocsr()
    relevant.eliminate_zeros()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    return Holdout(user_ids, item_ids, train, seen, relevant, users)


def similarity_matrix(lists: dict[int, tuple[list[int], list[float]]], item_ids: np.ndarray) -> sp.csr_matrix:
    """``S[i, j]`` = similarity of item j in item i's list (from item_similarities)."""
    index = {int(v): n for n, v in enumerate(item_ids)}
    rows, cols, vals = [], [], []
    for item, (others, scores) in lists.items():
        if item not in index:
            continue
        for other, score in zip(others, scores):
            if other in index:
                rows.append(index[item])
                cols.append(index[other])
                vals.append(score)
    return sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(item_ids), len(item_ids)))


def evaluate_top(holdout: Holdout, users: np.ndarray, ranked: np.ndarray, k: int = 10) -> dict[str, float]:
    return evaluate(ranked, holdout.relevant[users], holdout.train_item_counts(), holdout.n_items, k=k)


def baseline_rankings(
    holdout: Holdout, users: np.ndarray, similarities: sp.csr_matrix | None, k: int = 10, max_ease_items: int = 20_000, seed: int = 42
) -> dict[str, np.ndarray]:
    """Top-k item indices of every baseline for ``users`` (already-seen items removed)."""
    exclude = holdout.seen[users]
    out: dict[str, np.ndarray] = {}
    models: dict[str, Callable[[], object]] = {
        "most_popular": MostPopular,
        "als": lambda: ALS(factors=32, regularization=0.1, alpha=5.0, iterations=15, seed=seed, num_threads=1),
    }
    if holdout.n_items <= max_ease_items:
        models["ease"] = lambda: EASE(lambda_=200.0)
    for name, make in models.items():
        model = make().fit(holdout.train)
        out[name] = top_k(model.score(users), k, exclude=exclude)
    if similarities is not None and similarities.nnz:
        history = holdout.train[users]
        out["cooccurrence"] = top_k(np.asarray((history @ similarities).todense(), dtype=np.float32), k, exclude=exclude)
    return out


def model_ranking(artifact: ModelArtifact, holdout: Holdout, users: np.ndarray, k: int = 10) -> np.ndarray:
    """Top-k of a model version for ``users`` (holdout index space), mapped through ids.

    Works for any version: users the version does not know get an empty list (-1), items
    it does not know are never returned.
    """
    own_user = artifact.user_index()
    own_item = artifact.item_index()
    target_item = {int(v): n for n, v in enumerate(holdout.item_ids)}
    out = np.full((len(users), k), -1, dtype=np.int64)
    rows = [(n, own_user[int(holdout.user_ids[u])]) for n, u in enumerate(users) if int(holdout.user_ids[u]) in own_user]
    if not rows:
        return out
    positions, own_users = zip(*rows)
    # the model's top_k takes exclusions as a full [its users, its items] matrix
    r, c = [], []
    for own_u, u in zip(own_users, np.asarray(users)[list(positions)]):
        for i in holdout.seen[u].indices:
            own_i = own_item.get(int(holdout.item_ids[i]))
            if own_i is not None:
                r.append(own_u)
                c.append(own_i)
    ex = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(artifact.user_ids), len(artifact.item_ids)))
    ranked = artifact.model.top_k(np.asarray(own_users), k, exclude=ex)
    own_items = artifact.item_ids
    for row, pos in enumerate(positions):
        mapped = [target_item.get(int(own_items[i]), -1) if i >= 0 else -1 for i in ranked[row]]
        out[pos] = mapped
    return out


def markdown_table(results: dict[str, dict[str, float]], metrics: list[str]) -> str:
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for model, values in results.items():
        lines.append(f"| {model} | " + " | ".join(f"{values.get(m, float('nan')):.4f}" for m in metrics) + " |")
    return "\n".join(lines)
