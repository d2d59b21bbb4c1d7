"""Two-tower model on synthetic data with strong latent structure (clusters of tastes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.evaluation.baselines import MostPopular, recommend
from recsys_assets.evaluation.metrics import evaluate
from recsys_assets.training.two_tower import (
    TowerFeatures,
    TrainedTwoTower,
    TwoTowerConfig,
    popularity_shift_bias,
    train_two_tower,
)

N_USERS, N_ITEMS, N_CLUSTERS, PER_USER = 300, 150, 6, 16


@dataclass
class Synthetic:
    user_cluster: np.ndarray
    item_cluster: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]

    def csr(self, pairs: tuple[np.ndarray, np.ndarray]) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(pairs[0].size), pairs), shape=(N_USERS, N_ITEMS))


@pytest.fixture(scope="module")
def data() -> Synthetic:
    """Users and items belong to taste clusters; users mostly pick (Zipf-popular) items
    of their own cluster, so popularity alone is a weak predictor."""
    rng = np.random.default_rng(0)
    user_cluster = rng.integers(0, N_CLUSTERS, N_USERS)
    item_cluster = np.arange(N_ITEMS) % N_CLUSTERS
    popularity = np.minimum(rng.zipf(1.3, N_ITEMS), 50).astype(float)
    users, items = [], []
    for u in range(N_USERS):
        p = np.where(item_cluster == user_cluster[u], 1.0, 0.03) * popularity
        users += [u] * PER_USER
        items += list(rng.choice(N_ITEMS, PER_USER, replace=False, p=p / p.sum()))
    users_a, items_a = np.array(users), np.array(items)
    is_train = rng.random(users_a.size) < 0.8
    return Synthetic(
        user_cluster,
        item_cluster,
        (users_a[is_train], items_a[is_train]),
        (users_a[~is_train], items_a[~is_train]),
    )


def config(**overrides: object) -> TwoTowerConfig:
    base: dict[str, object] = dict(embedding_dim=16, batch_size=256, max_epochs=8, patience=3, temperature=0.2, num_threads=1, seed=7)
    base.update(overrides)
    return TwoTowerConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(data: Synthetic) -> tuple[TrainedTwoTower, list[tuple[int, float, dict[str, float] | None]]]:
    calls: list[tuple[int, float, dict[str, float] | None]] = []
    model = train_two_tower(
        data.train, N_USERS, N_ITEMS, config(), valid=data.valid, callback=lambda e, l, m: calls.append((e, l, m))
    )
    return model, calls


def test_beats_most_popular_by_a_clear_margin(data: Synthetic, trained: tuple[TrainedTwoTower, list]) -> None:
    model, _ = trained
    train, valid = data.csr(data.train), data.csr(data.valid)
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    counts = np.bincount(data.train[1], minlength=N_ITEMS)
    pop = evaluate(recommend(MostPopular().fit(train), train, users), valid[users], counts, N_ITEMS)
    two_tower = evaluate(model.top_k(users, 10, exclude=train), valid[users], counts, N_ITEMS)
    assert two_tower["recall@10"] > pop["recall@10"] + 0.3, (two_tower, pop)
    assert two_tower["ndcg@10"] > pop["ndcg@10"] + 0.15
    # the restored best epoch is the one the history says was best
    best = max(model.history, key=lambda h: h["val_recall@10"])
    assert model.best_epoch == best["epoch"]


def test_callback_and_history(trained: tuple[TrainedTwoTower, list]) -> None:
    model, calls = trained
    assert [c[0] for c in calls] == list(range(1, len(model.history) + 1))
    assert all(np.isfinite(c[1]) and c[2] is not None and "recall@10" in c[2] for c in calls)
    assert [h["loss"] for h in model.history] == [c[1] for c in calls]


def test_embeddings_are_unit_norm_float32(trained: tuple[TrainedTwoTower, list]) -> None:
    model, _ = trained
    for emb, n in ((model.user_embeddings(), N_USERS), (model.item_embeddings(), N_ITEMS)):
        assert emb.dtype == np.float32 and emb.shape == (n, 16)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_same_seed_same_embeddings(data: Synthetic) -> None:
    a = train_two_tower(data.train, N_USERS, N_ITEMS, config(max_epochs=2))
    b = train_two_tower(data.train, N_USERS, N_ITEMS, config(max_epochs=2))
    c = train_two_tower(data.train, N_USERS, N_ITEMS, config(max_epochs=2, seed=8))
    assert np.array_equal(a.user_embeddings(), b.user_embeddings())
    assert np.array_equal(a.item_embeddings(), b.item_embeddings())
    assert not np.array_equal(a.item_embeddings(), c.item_embeddings())


def test_serialization_round_trip(data: Synthetic, trained: tuple[TrainedTwoTower, list], tmp_path) -> None:
    model, _ = trained
    restored = TrainedTwoTower.from_bytes(model.to_bytes())
    assert restored.config == model.config
    assert restored.history == model.history and restored.best_epoch == model.best_epoch
    np.testing.assert_array_equal(restored.user_embeddings(), model.user_embeddings())
    np.testing.assert_array_equal(restored.item_embeddings(), model.item_embeddings())
    model.save(tmp_path / "model.pt")
    np.testing.assert_array_equal(TrainedTwoTower.load(tmp_path / "model.pt").score(np.arange(3)), model.score(np.arange(3)))
    assert set(model.state_dict()) >= {"user_tower.ids.weight", "item_tower.ids.weight"}


def test_cold_start_users_and_items_from_features(data: Synthetic) -> None:
    rng = np.random.default_rng(1)
    cold_users = rng.choice(N_USERS, 30, replace=False)
    cold_items = np.arange(N_ITEMS)[-12:]
    keep = ~np.isin(data.train[0], cold_users) & ~np.isin(data.train[1], cold_items)
    pairs = (data.train[0][keep], data.train[1][keep])
    dense = np.eye(N_CLUSTERS)[data.user_cluster] + rng.normal(0, 0.1, (N_USERS, N_CLUSTERS))
    categorical = data.user_cluster[:, None]
    user_features = TowerFeatures(
        dense=dense,
        categorical=categorical,
        cardinalities=[N_CLUSTERS],
        dense_names=[f"taste_{c}" for c in range(N_CLUSTERS)],
        categorical_names=["segment"],
    )
    item_features = np.eye(N_CLUSTERS)[data.item_cluster]
    model = train_two_tower(
        pairs, N_USERS, N_ITEMS, config(max_epochs=6), user_features=user_features, item_features=item_features
    )
    assert not model.warm_users[cold_users].any() and not model.warm_items[cold_items].any()
    users = model.user_embeddings()
    np.testing.assert_allclose(np.linalg.norm(users[cold_users], axis=1), 1.0, atol=1e-5)

    # A cold user's recommendations come from their own taste cluster.
    recs = model.top_k(cold_users, 10)
    in_cluster = (data.item_cluster[recs] == data.user_cluster[cold_users][:, None]).mean()
    assert in_cluster > 0.7, in_cluster

    # Cold items are scored highest by users of their own cluster.
    scores = users @ model.item_embeddings()[cold_items].T
    same = data.user_cluster[:, None] == data.item_cluster[cold_items][None, :]
    assert scores[same].mean() > scores[~same].mean() + 0.3

    # encode_users on the same feature rows reproduces the cold users' embeddings.
    encoded = model.encode_users(
        TowerFeatures(dense=dense[cold_users], categorical=categorical[cold_users])
    )
    np.testing.assert_allclose(encoded, users[cold_users], atol=1e-5)
    assert model.user_schema["dense_names"][0] == "taste_0"
    assert model.user_schema["categorical_names"] == ["segment"]

    restored = TrainedTwoTower.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(restored.user_embeddings(), users)


def test_id_only_cold_entities(data: Synthetic) -> None:
    keep = data.train[1] != 0  # item 0 never trained
    pairs = (data.train[0][keep], data.train[1][keep])
    pairs = (np.append(pairs[0], 0), np.append(pairs[1], 1))
    model = train_two_tower(pairs, N_USERS + 1, N_ITEMS, config(max_epochs=1))  # user N_USERS is cold
    users = model.user_embeddings()
    assert not model.warm_users[N_USERS]
    np.testing.assert_allclose(np.linalg.norm(users[N_USERS]), 1.0, atol=1e-5)
    assert 0 not in model.top_k(np.arange(N_USERS + 1), 20)
    with pytest.raises(ValueError):
        model.encode_users(np.zeros((1, 3)))


def test_training_variants_run(data: Synthetic) -> None:
    for cfg in (
        config(max_epochs=1, extra_uniform_negatives=32),
        config(max_epochs=1, logq_correction=False, mask_user_positives=False),
    ):
        model = train_two_tower(data.train, N_USERS, N_ITEMS, cfg)
        assert np.isfinite(model.history[0]["loss"])
    weights = np.linspace(0.1, 1.0, data.train[0].size)
    assert train_two_tower(data.train, N_USERS, N_ITEMS, config(max_epochs=1), pair_weights=weights).history
    with pytest.raises(ValueError):
        train_two_tower((np.array([0]), np.array([N_ITEMS])), N_USERS, N_ITEMS, config())


def test_popularity_shift_bias() -> None:
    bias = popularity_shift_bias(np.array([10.0, 10.0, 0.0]), np.array([0.0, 10.0, 10.0]), strength=1.0)
    assert bias[2] > bias[1] > bias[0]
    assert np.all(popularity_shift_bias(np.ones(3), np.zeros(3)) == 0)
