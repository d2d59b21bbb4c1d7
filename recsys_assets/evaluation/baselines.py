"""Baseline recommenders that every model version is compared against.

All baselines share one small interface: ``fit(train)`` on a ``scipy.sparse`` CSR
interaction matrix ``[n_users, n_items]`` (contiguous indices; values are treated as
binary implicit feedback), then ``score(user_indices)`` returns dense ``float32``
scores ``[len(user_indices), n_items]`` (higher is better). :func:`top_k` turns scores
into ranked item indices with already-seen items removed, and :func:`recommend` does
both for a fitted model.

Cost notes: ``MostPopular`` and ``ItemCooccurrence`` are sparse and cheap; ``ALS`` uses
the ``implicit`` library; ``EASE`` inverts a dense ``n_items x n_items`` Gram matrix
(O(n_items^3) time, O(n_items^2) memory: fine up to ~20k items).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

__all__ = [
    "ALS",
    "EASE",
    "ItemCooccurrence",
    "MostPopular",
    "Recommender",
    "binarize",
    "recommend",
    "top_k",
]


@runtime_checkable
class Recommender(Protocol):
    """What the evaluation needs from a model: fit on a CSR matrix, score users."""

    def fit(self, train: sp.csr_matrix) -> Recommender: ...

    def score(self, user_indices: np.ndarray) -> np.ndarray: ...


def binarize(train: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """CSR float32 copy with duplicates summed and every stored non-zero set to 1."""
    mat = sp.csr_matrix(train, dtype=np.float32, copy=True)
    mat.sum_duplicates()
    mat.eliminate_zeros()
    mat.data[:] = 1.0
    return mat


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: sp.spmatrix | sp.sparray | None = None,
) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first, ``int64 [n_rows, k]``.

    ``exclude`` is a sparse matrix aligned row-for-row with ``scores`` (e.g. the training
    rows of the same users); its non-zero items are never returned. Ties are broken by
    the lower item index among the candidates (``np.argpartition`` picks which of
    several items tied at the k-th score get in, deterministically). Rows with fewer
    than ``k`` eligible items are padded with ``-1``.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    n_rows, n_items = s.shape
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        if ex.shape[0] != n_rows:
            raise ValueError(f"exclude has {ex.shape[0]} rows, scores has {n_rows}")
        rows = np.repeat(np.arange(n_rows), np.diff(ex.indptr))
        s[rows, ex.indices] = -np.inf
    k_eff = min(k, n_items)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    if k_eff <= 0 or n_rows == 0:
        return out
    if k_eff < n_items:
        cand = np.argpartition(-s, k_eff - 1, axis=1)[:, :k_eff]
    else:
        cand = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    cand_scores = np.take_along_axis(s, cand, axis=1)
    order = np.lexsort((cand, -cand_scores), axis=-1)
    ranked = np.take_along_axis(cand, order, axis=1)
    ranked_scores = np.take_along_axis(cand_scores, order, axis=1)
    out[:, :k_eff] = np.where(np.isfinite(ranked_scores), ranked, -1)
    return out


def recommend(
    model: Recommender,
    train: sp.csr_matrix,
    user_indices: np.ndarray,
    k: int = 10,
    batch_size: int = 2048,
) -> np.ndarray:
    """Top-k item indices for ``user_indices`` with the users' ``train`` items removed."""
    users = np.asarray(user_indices, dtype=np.int64)
    train = sp.csr_matrix(train)
    parts = [
        top_k(model.score(users[s : s + batch_size]), k, exclude=train[users[s : s + batch_size]])
        for s in range(0, users.size, batch_size)
    ]
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)


class MostPopular:
    """Scores every item by its number of distinct training users, for everyone."""

    def __init__(self) -> None:
        self.item_counts_: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix) -> MostPopular:
        self.item_counts_ = np.asarray(binarize(train).sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        if self.item_counts_ is None:
            raise RuntimeError("fit() first")
        n = len(np.atleast_1d(user_indices))
        return np.tile(self.item_counts_, (n, 1))

    def get_params(self) -> dict[str, object]:
        return {}


Similarity = Literal["jaccard", "cosine", "lift"]


class ItemCooccurrence:
    """Item-item co-occurrence normalised so blockbusters do not dominate.

    With ``C_ij`` the number of users who interacted with both items and ``c_i`` the
    item's user count, the similarity is

    * ``jaccard``: ``C_ij / (c_i + c_j - C_ij)``
    * ``cosine``:  ``C_ij / sqrt(c_i * c_j)``
    * ``lift``:    ``C_ij / (c_i * c_j)``

    with the diagonal set to zero. A user's score for item ``j`` is the sum of the
    similarities between ``j`` and the items in the user's history (as in SAR without
    time decay). ``min_cooccurrence`` drops pairs seen together fewer times.
    """

    def __init__(self, similarity: Similarity = "jaccard", min_cooccurrence: int = 1) -> None:
        if similarity not in ("jaccard", "cosine", "lift"):
            raise ValueError(f"unknown similarity {similarity!r}")
        self.similarity = similarity
        self.min_cooccurrence = min_cooccurrence
        self.train_: sp.csr_matrix | None = None
        self.similarity_: sp.csr_matrix | None = None

    def fit(self, train: sp.csr_matrix) -> ItemCooccurrence:
        x = binarize(train)
        co = sp.csr_matrix(x.T @ x)
        co.setdiag(0)
        co.eliminate_zeros()
        if self.min_cooccurrence > 1:
            co.data[co.data < self.min_cooccurrence] = 0
            co.eliminate_zeros()
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        coo = co.tocoo()
        ci, cj, cij = counts[coo.row], counts[coo.col], coo.data.astype(np.float64)
        if self.similarity == "jaccard":
            values = cij / (ci + cj - cij)
        elif self.similarity == "cosine":
            values = cij / np.sqrt(ci * cj)
        else:
            values = cij / (ci * cj)
        self.similarity_ = sp.csr_matrix((values.astype(np.float32), (coo.row, coo.col)), shape=co.shape)
        self.train_ = x
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        if self.train_ is None or self.similarity_ is None:
            raise RuntimeError("fit() first")
        rows = self.train_[np.asarray(user_indices, dtype=np.int64)]
        return np.asarray((rows @ self.similarity_).todense(), dtype=np.float32)

    def get_params(self) -> dict[str, object]:
        return {"similarity": self.similarity, "min_cooccurrence": self.min_cooccurrence}


class ALS:
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit``'s CPU solver.

    Confidence is ``1 + alpha * r`` with ``r`` the binary interaction; ``regularization``
    is the L2 weight; ``seed`` makes the factor initialisation reproducible. BLAS is
    limited to one thread while fitting (``implicit``'s own recommendation).
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self.user_factors_: np.ndarray | None = None
        self.item_factors_: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
                calculate_training_loss=False,
            )
            model.fit(binarize(train), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        if self.user_factors_ is None or self.item_factors_ is None:
            raise RuntimeError("fit() first")
        return self.user_factors_[np.asarray(user_indices, dtype=np.int64)] @ self.item_factors_.T

    def get_params(self) -> dict[str, object]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
        }


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019), closed form.

    ``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1`` (so ``diag(B) = 0``);
    scores are ``X_u B``. ``lambda_`` is the L2 weight, to be tuned on validation.
    """

    def __init__(self, lambda_: float = 500.0) -> None:
        self.lambda_ = lambda_
        self.train_: sp.csr_matrix | None = None
        self.weights_: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix) -> EASE:
        x = binarize(train)
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.lambda_
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.weights_ = b.astype(np.float32)
        self.train_ = x
        return self

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        if self.train_ is None or self.weights_ is None:
            raise RuntimeError("fit() first")
        rows = self.train_[np.asarray(user_indices, dtype=np.int64)]
        return np.asarray(rows @ self.weights_, dtype=np.float32)

    def get_params(self) -> dict[str, object]:
        return {"lambda_": self.lambda_}
