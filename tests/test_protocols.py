"""Evaluation protocols: split sizes, stratification, no leakage, seed determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_assets.evaluation.protocols import (
    MSR_BENCHMARK_FILTER_BY,
    build_interactions,
    load_movielens,
    msr_stratified_split,
    temporal_cutoff,
    temporal_split,
    validation_split,
)

DAY = 86_400
START = 1_000_000_000 - 1_000_000_000 % DAY  # a UTC midnight


def synthetic(n_users: int = 60, n_items: int = 40, n_events: int = 2_000, days: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = pd.DataFrame(
        {
            "user_id": rng.integers(1, n_users + 1, n_events),
            "item_id": rng.zipf(1.5, n_events) % n_items + 1,
        }
    ).drop_duplicates()
    return pairs.assign(
        rating=rng.integers(1, 6, len(pairs)).astype(float),
        timestamp=START + rng.integers(0, days * DAY, len(pairs)),
    ).reset_index(drop=True)


def test_load_movielens_reads_u_data(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    df = load_movielens(tmp_path)
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert df.iloc[0].tolist() == [196, 242, 3, 881250949]
    with pytest.raises(FileNotFoundError):
        load_movielens(tmp_path / "missing")


def test_msr_split_is_stratified_by_item_by_default_with_half_to_even_rounding() -> None:
    assert MSR_BENCHMARK_FILTER_BY == "item"
    # item sizes 1, 2, 4, 6 -> train round(0.75 n) = 1, 2 (round(1.5)), 3, 4 (round(4.5))
    sizes = {1: 1, 2: 2, 3: 4, 4: 6}
    df = pd.DataFrame(
        [(u, item, 4.0, START + u) for item, n in sizes.items() for u in range(n)],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )
    train, test = msr_stratified_split(df)
    assert train.groupby("item_id").size().to_dict() == {1: 1, 2: 2, 3: 3, 4: 4}
    assert test.groupby("item_id").size().to_dict() == {3: 1, 4: 2}


@pytest.mark.parametrize("filter_by", ["item", "user"])
def test_msr_split_partitions_rows_per_group(filter_by: str) -> None:
    df = synthetic()
    train, test = msr_stratified_split(df, ratio=0.75, seed=42, filter_by=filter_by)  # type: ignore[arg-type]
    # no leakage: a partition of the input rows
    assert not set(train.index) & set(test.index)
    assert set(train.index) | set(test.index) == set(df.index)
    col = "item_id" if filter_by == "item" else "user_id"
    sizes = df.groupby(col).size()
    expected = np.round(0.75 * sizes).astype(int)
    assert train.groupby(col).size().reindex(sizes.index, fill_value=0).equals(expected)


def test_msr_split_seed_determinism() -> None:
    df = synthetic()
    a_train, a_test = msr_stratified_split(df, seed=42)
    b_train, b_test = msr_stratified_split(df, seed=42)
    pd.testing.assert_frame_equal(a_train, b_train)
    pd.testing.assert_frame_equal(a_test, b_test)
    c_train, _ = msr_stratified_split(df, seed=7)
    assert set(c_train.index) != set(a_train.index)


def test_msr_split_min_rating_and_argument_checks() -> None:
    df = synthetic()
    train, test = msr_stratified_split(df, min_rating=5)
    kept = df.groupby("item_id").size()
    assert set(pd.concat([train, test])["item_id"]) == set(kept[kept >= 5].index)
    with pytest.raises(ValueError):
        msr_stratified_split(df, filter_by="time")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        msr_stratified_split(df, ratio=1.5)


def test_temporal_split_cutoff_and_filtering() -> None:
    df = synthetic()
    cutoff = pd.Timestamp(START + 45 * DAY + 3_600, unit="s", tz="UTC")  # floored to the day
    train, test = temporal_split(df, cutoff=cutoff)
    day = cutoff.floor("D").timestamp()
    assert (train["timestamp"] < day).all()
    assert (test["timestamp"] >= day).all()
    assert len(train) == (df["timestamp"] < day).sum()
    # unseen users/items dropped, seen pairs dropped, no duplicates
    assert set(test["user_id"]) <= set(train["user_id"])
    assert set(test["item_id"]) <= set(train["item_id"])
    train_pairs = set(zip(train["user_id"], train["item_id"]))
    assert not any(p in train_pairs for p in zip(test["user_id"], test["item_id"]))
    assert not test.duplicated(["user_id", "item_id"]).any()
    assert len(test) > 0


def test_temporal_split_test_days_horizon_and_fraction() -> None:
    df = synthetic(days=60)
    last_day = pd.Timestamp(df["timestamp"].max(), unit="s", tz="UTC").floor("D")
    train, test = temporal_split(df, test_days=10)
    assert temporal_cutoff(df, test_days=10) == last_day - pd.Timedelta(days=9)
    assert (train["timestamp"] < temporal_cutoff(df, test_days=10).timestamp()).all()
    _, short = temporal_split(df, test_days=10, horizon_days=3)
    assert (short["timestamp"] < (last_day - pd.Timedelta(days=6)).timestamp()).all()
    assert len(short) < len(test)
    cut = temporal_cutoff(df, test_fraction=0.25)
    share = (df["timestamp"] >= cut.timestamp()).mean()
    assert 0.2 < share < 0.3
    with pytest.raises(ValueError):
        temporal_split(df)
    with pytest.raises(ValueError):
        temporal_split(df, test_days=5, test_fraction=0.2)


def test_validation_split_only_uses_training_rows() -> None:
    df = synthetic()
    train, test = msr_stratified_split(df)
    fit, valid = validation_split(train, "msr_stratified", ratio=0.8)
    assert set(fit.index) | set(valid.index) == set(train.index)
    assert not set(valid.index) & set(test.index)
    assert validation_split(train, "msr_stratified")[1].equals(valid)  # seeded

    t_train, t_test = temporal_split(df, test_days=10)
    t_fit, t_valid = validation_split(t_train, "temporal", test_days=10)
    assert set(t_fit.index) | set(t_valid.index) <= set(t_train.index)
    assert t_valid["timestamp"].max() < t_test["timestamp"].min()
    assert t_fit["timestamp"].max() < t_valid["timestamp"].min()


def test_build_interactions_indexes_one_vocabulary() -> None:
    df = synthetic()
    train, test = msr_stratified_split(df)
    data = build_interactions(train, test)
    assert data.n_users == df["user_id"].nunique()
    assert data.n_items == df["item_id"].nunique()
    assert data.train.nnz == len(train) and data.test.nnz == len(test)
    assert data.train_item_counts.sum() == len(train)
    assert data.train.multiply(data.test).nnz == 0
    u, i = data.test_pairs()
    assert set(zip(data.user_ids[u], data.item_ids[i])) == set(zip(test["user_id"], test["item_id"]))
    # reusing a vocabulary drops unknown ids
    small = build_interactions(train, test, item_ids=data.item_ids[:5])
    assert small.n_items == 5
    assert small.train.nnz == train["item_id"].isin(data.item_ids[:5]).sum()
