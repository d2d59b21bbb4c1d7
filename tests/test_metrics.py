"""Ranking metrics reproduce hand-computed values (microsoft/recommenders definitions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.evaluation.metrics import (
    catalog_coverage,
    evaluate,
    map_at_k,
    metric_keys,
    ndcg_at_k,
    novelty,
    per_user_metrics,
    precision_at_k,
    recall_at_k,
)

# Two users, k = 3.
# user 0: recommended [1, 2, 3], relevant {2, 7}        -> one hit at rank 2
# user 1: recommended [4, 5, 6], relevant {4, 6, 8, 9}  -> hits at ranks 1 and 3
TOP_K = np.array([[1, 2, 3], [4, 5, 6]])
RELEVANT = [[2, 7], [4, 6, 8, 9]]
N_ITEMS = 10
K = 3


def test_precision_and_recall_by_hand() -> None:
    assert precision_at_k(TOP_K, RELEVANT, K) == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert recall_at_k(TOP_K, RELEVANT, K) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_ndcg_natural_log_discount_and_ideal_over_min_k_relevant() -> None:
    dcg0 = 1 / math.log(3)
    idcg0 = 1 / math.log(2) + 1 / math.log(3)  # min(k=3, |rel|=2) = 2 ideal hits
    dcg1 = 1 / math.log(2) + 1 / math.log(4)
    idcg1 = 1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4)  # min(3, 4) = 3
    assert ndcg_at_k(TOP_K, RELEVANT, K) == pytest.approx((dcg0 / idcg0 + dcg1 / idcg1) / 2)


def test_map_divides_by_all_relevant_items() -> None:
    ap0 = (1 / 2) / 2  # precision@2 = 1/2, two relevant items
    ap1 = (1 / 1 + 2 / 3) / 4  # precision@1 = 1, precision@3 = 2/3, four relevant items
    assert map_at_k(TOP_K, RELEVANT, K) == pytest.approx((ap0 + ap1) / 2)
    # Not the min(k, |relevant|) variant (microsoft/recommenders' map_at_k):
    min_variant = ((1 / 2) / 2 + (1 + 2 / 3) / 3) / 2
    assert map_at_k(TOP_K, RELEVANT, K) != pytest.approx(min_variant)


def test_perfect_ranking_scores_one() -> None:
    top = np.array([[3, 1, 2]])
    assert ndcg_at_k(top, [[1, 2, 3]], 3) == pytest.approx(1.0)
    assert map_at_k(top, [[1, 2, 3]], 3) == pytest.approx(1.0)
    assert precision_at_k(top, [[1, 2, 3]], 3) == pytest.approx(1.0)
    # More relevant items than k: nDCG can still reach 1 (ideal DCG over k), recall cannot.
    assert ndcg_at_k(top, [[1, 2, 3, 4, 5]], 3) == pytest.approx(1.0)
    assert recall_at_k(top, [[1, 2, 3, 4, 5]], 3) == pytest.approx(3 / 5)


def test_users_without_relevant_items_are_skipped() -> None:
    top = np.vstack([TOP_K, [[7, 8, 9]]])
    rel = RELEVANT + [[]]
    assert ndcg_at_k(top, rel, K) == pytest.approx(ndcg_at_k(TOP_K, RELEVANT, K))
    res = evaluate(top, rel, np.ones(N_ITEMS), N_ITEMS, k=K)
    # coverage also only looks at the evaluated users' lists (items 1..6)
    assert res["coverage"] == pytest.approx(6 / N_ITEMS)


def test_sparse_relevance_matches_lists() -> None:
    rows = [0, 0, 1, 1, 1, 1]
    cols = [2, 7, 4, 6, 8, 9]
    mat = sp.csr_matrix((np.ones(6), (rows, cols)), shape=(2, N_ITEMS))
    counts = np.arange(1, N_ITEMS + 1, dtype=float)
    assert evaluate(TOP_K, mat, counts, N_ITEMS, k=K) == evaluate(TOP_K, RELEVANT, counts, N_ITEMS, k=K)


def test_padding_is_never_a_hit_and_precision_divides_by_k() -> None:
    top = np.array([[2, -1, -1]])
    assert precision_at_k(top, [[2, 5]], 3) == pytest.approx(1 / 3)
    assert recall_at_k(top, [[2, 5]], 3) == pytest.approx(1 / 2)
    # narrower than k is padded
    assert precision_at_k(np.array([[2]]), [[2]], 3) == pytest.approx(1 / 3)


def test_coverage_and_novelty_by_hand() -> None:
    counts = np.array([0, 50, 25, 10, 5, 5, 5, 0, 0, 0], dtype=float)  # total 100
    assert catalog_coverage(TOP_K, N_ITEMS) == pytest.approx(0.6)
    expected = np.mean(-np.log2(np.array([50, 25, 10, 5, 5, 5]) / 100))
    assert novelty(TOP_K, counts) == pytest.approx(expected)
    # an item never seen in training counts as one interaction
    assert novelty(np.array([[7]]), counts) == pytest.approx(-math.log2(1 / 100))


def test_evaluate_keys_and_values() -> None:
    counts = np.array([0, 50, 25, 10, 5, 5, 5, 0, 0, 0], dtype=float)
    res = evaluate(TOP_K, RELEVANT, counts, N_ITEMS, k=K)
    assert tuple(res) == metric_keys(K) == ("ndcg@3", "recall@3", "precision@3", "map@3", "coverage", "novelty")
    assert res["map@3"] == pytest.approx(map_at_k(TOP_K, RELEVANT, K))
    assert tuple(evaluate(TOP_K, RELEVANT, counts, N_ITEMS)) == metric_keys(10)
    assert all(isinstance(v, float) for v in res.values())


def test_per_user_values_align_with_means() -> None:
    per_user = per_user_metrics(TOP_K, RELEVANT, K)
    assert per_user["users"].tolist() == [0, 1]
    assert per_user["map"].mean() == pytest.approx(map_at_k(TOP_K, RELEVANT, K))
    assert per_user["precision"].tolist() == pytest.approx([1 / 3, 2 / 3])
