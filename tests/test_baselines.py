"""Baselines on tiny matrices: expected rankings, seen items excluded, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.evaluation.baselines import (
    ALS,
    EASE,
    ItemCooccurrence,
    MostPopular,
    Recommender,
    recommend,
    top_k,
)


def csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n_items))


# Two taste blocks: users 0-5 like items 0-3, users 6-11 like items 4-7; every user has
# seen all but one item of their block. Item 8 is never seen.
BLOCKS = [
    [1, 2, 3],
    [0, 2, 3],
    [0, 1, 3],
    [0, 1, 2],
    [1, 2, 3],
    [0, 2, 3],
    [5, 6, 7],
    [4, 6, 7],
    [4, 5, 7],
    [4, 5, 6],
    [5, 6, 7],
    [4, 6, 7],
]
TRAIN = csr(BLOCKS, 9)
BLOCK_ITEMS = [set(range(4))] * 6 + [set(range(4, 8))] * 6
MISSING = {u: (BLOCK_ITEMS[u] - set(row)).pop() for u, row in enumerate(BLOCKS)}  # the block item u has not seen


def test_top_k_excludes_seen_and_breaks_ties_by_index() -> None:
    scores = np.array([[5.0, 5.0, 1.0, 9.0, 5.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    exclude = csr([[3], [0, 1, 2]], 5)
    assert top_k(scores, 3, exclude=exclude).tolist() == [[0, 1, 4], [3, 4, -1]]
    assert top_k(scores, 2).tolist() == [[3, 0], [0, 1]]


def test_top_k_pads_when_everything_is_seen() -> None:
    out = top_k(np.ones((1, 3)), 5, exclude=csr([[0, 1]], 3))
    assert out.tolist() == [[2, -1, -1, -1, -1]]


def test_most_popular_ranks_by_user_count() -> None:
    train = csr([[0], [0, 1], [0, 1, 2], [3]], 5)
    model = MostPopular().fit(train)
    assert isinstance(model, Recommender)
    assert model.score(np.array([0]))[0].tolist() == [3, 2, 1, 1, 0]
    recs = recommend(model, train, np.arange(4), k=2)
    assert recs[0].tolist() == [1, 2]  # item 0 already seen
    assert recs[3].tolist() == [0, 1]
    for u, row in enumerate(recs):
        assert not set(row.tolist()) & set(train[u].indices.tolist())


def test_cooccurrence_similarities_by_hand() -> None:
    # item 0: users {0,1,2}; item 1: users {0,1}; item 2: users {2}
    train = csr([[0, 1], [0, 1], [0, 2]], 3)
    def similarity(kind: str) -> np.ndarray:
        fitted = ItemCooccurrence(kind).fit(train)  # type: ignore[arg-type]
        assert fitted.similarity_ is not None
        return fitted.similarity_.toarray()

    jac = similarity("jaccard")
    assert jac[0, 1] == pytest.approx(2 / 3)  # 2 / (3 + 2 - 2)
    assert jac[0, 2] == pytest.approx(1 / 3)
    assert jac[1, 2] == 0.0
    assert np.all(np.diag(jac) == 0)
    cos = similarity("cosine")
    assert cos[0, 1] == pytest.approx(2 / np.sqrt(6))
    lift = similarity("lift")
    assert lift[0, 1] == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        ItemCooccurrence("pmi")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "model",
    [
        ItemCooccurrence("jaccard"),
        ItemCooccurrence("cosine"),
        ALS(factors=4, regularization=0.1, alpha=5.0, iterations=10, seed=1, num_threads=1),
        EASE(lambda_=1.0),
    ],
    ids=["cooc-jaccard", "cooc-cosine", "als", "ease"],
)
def test_personalised_baselines_recommend_the_missing_block_item(model: Recommender) -> None:
    model.fit(TRAIN)
    users = np.array(sorted(MISSING))
    recs = recommend(model, TRAIN, users, k=1)
    assert recs[:, 0].tolist() == [MISSING[u] for u in users]
    # seen items never come back, even deep in the list
    deep = recommend(model, TRAIN, np.arange(TRAIN.shape[0]), k=9)
    for u, row in enumerate(deep):
        assert not set(row[row >= 0].tolist()) & set(TRAIN[u].indices.tolist())


def test_als_is_seeded() -> None:
    a = ALS(factors=4, iterations=5, seed=3, num_threads=1).fit(TRAIN)
    b = ALS(factors=4, iterations=5, seed=3, num_threads=1).fit(TRAIN)
    np.testing.assert_allclose(a.score(np.arange(12)), b.score(np.arange(12)), rtol=1e-5, atol=1e-6)


def test_ease_weights_have_zero_diagonal_and_shrink_with_lambda() -> None:
    small = EASE(lambda_=1.0).fit(TRAIN)
    big = EASE(lambda_=1e4).fit(TRAIN)
    assert small.weights_ is not None and big.weights_ is not None
    assert np.all(np.diag(small.weights_) == 0)
    assert np.abs(big.weights_).max() < np.abs(small.weights_).max()
    assert small.score(np.array([0, 1])).shape == (2, 9)


def test_unfitted_models_raise() -> None:
    for model in (MostPopular(), ItemCooccurrence(), ALS(), EASE()):
        with pytest.raises(RuntimeError):
            model.score(np.array([0]))
