"""Training data for the two-tower model: positives, time splits, tower feature matrices.

Pure functions over pyarrow/pandas. The towers read each entity's features as of the
end of the training split (fetched point-in-time from Feast), so nothing from the
validation or test days leaks into them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.training.two_tower import TowerFeatures
from recsys_assets.vocabulary import AGE_BANDS, GENRES, MATURITY_RATINGS, POSITIVE_EVENT_TYPES, REGIONS

TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclass(frozen=True)
class PositiveRules:
    """Which interactions are training positives (configurable per deployment)."""

    event_types: tuple[str, ...] = POSITIVE_EVENT_TYPES
    min_rating: float = 4.0  # ratings at or above count (how MovieLens ratings become positives)


def positive_interactions(events: pa.Table, rules: PositiveRules = PositiveRules()) -> pd.DataFrame:
    """Distinct positive (user, item, day) interactions with their first timestamp.

    ``events`` needs user_id, item_id, event_type, value, occurred_at, event_date.
    A play, its click and its completion on one day count once.
    """
    is_type = pc.is_in(events.column("event_type"), pa.array(list(rules.event_types)))
    is_rating = pc.and_(pc.equal(events.column("event_type"), "rating"), pc.greater_equal(events.column("value"), rules.min_rating))
    pos = events.filter(pc.or_(is_type, pc.fill_null(is_rating, False)))
    grouped = pos.group_by(["user_id", "item_id", "event_date"]).aggregate([("occurred_at", "min")])
    frame = grouped.to_pandas().rename(columns={"occurred_at_min": "event_timestamp"})
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame.sort_values(["event_timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)


def time_split(frame: pd.DataFrame, last_day: dt.date, validation_days: int, test_days: int) -> pd.Series:
    """``train`` / ``validation`` / ``test`` by day: the last ``test_days`` days are test, the
    ``validation_days`` before them validation, everything earlier train."""
    days = pd.to_datetime(frame["event_date"]).dt.date
    test_start = last_day - dt.timedelta(days=test_days - 1) if test_days else last_day + dt.timedelta(days=1)
    valid_start = test_start - dt.timedelta(days=validation_days)
    return pd.Series(np.where(days >= test_start, TEST, np.where(days >= valid_start, VALIDATION, TRAIN)), index=frame.index)


def fit_split(n_days: int, validation_days: int, test_days: int) -> tuple[int, int]:
    """Validation and test days that leave at least half of a short history for training."""
    budget = max(0, n_days // 2)
    test = min(test_days, max(1, budget // 2)) if n_days >= 2 else 0
    validation = min(validation_days, max(0, budget - test)) if n_days >= 3 else 0
    return validation, test


def split_bounds(last_day: dt.date, validation_days: int, test_days: int) -> dict[str, dt.date]:
    test_start = last_day - dt.timedelta(days=test_days - 1)
    valid_start = test_start - dt.timedelta(days=validation_days)
    return {"train_end": valid_start - dt.timedelta(days=1), "validation_start": valid_start, "test_start": test_start, "test_end": last_day}


def end_of_day(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=dt.timezone.utc))


# ------------------------------------------------------------------- tower features
USER_DENSE = ("log_events_30d", "log_positives_30d", "active_share_30d", "recency_30d", "mean_rating_30d") + tuple(
    f"affinity_{g}" for g in GENRES
)
USER_CATEGORICAL = ("region", "age_band", "is_kids")
ITEM_DENSE = ("popularity_30d", "log_trend_velocity", "item_mean_rating_30d", "log_title_age_days") + tuple(
    f"genre_{g}" for g in GENRES
)
ITEM_CATEGORICAL = ("maturity_rating", "primary_genre")

USER_FEATURE_REFS = [
    "user_features:events_30d",
    "user_features:positives_30d",
    "user_features:active_days_30d",
    "user_features:days_since_last_activity",
    "user_features:mean_rating_30d",
    "user_features:genre_affinity",
]
ITEM_FEATURE_REFS = [
    "item_features:popularity_30d",
    "item_features:trend_velocity",
    "item_features:item_mean_rating_30d",
    "item_features:title_age_days",
    "item_features:genre_vector",
]


def _codes(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocabulary)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int64)


def _vector_columns(values: pd.Series, width: int) -> np.ndarray:
    out = np.full((len(values), width), np.nan, dtype=np.float32)
    for row, vec in enumerate(values):
        if vec is not None and len(vec) == width:
            out[row] = vec
    return out


def user_tower_features(frame: pd.DataFrame) -> TowerFeatures:
    """Rows in ``frame`` order: users columns (region, age_band, is_kids) plus the Feast
    user features; missing features are NaN (standardised to 0 by the tower)."""
    f = frame
    dense = np.column_stack(
        [
            np.log1p(f["events_30d"].astype(float)),
            np.log1p(f["positives_30d"].astype(float)),
            f["active_days_30d"].astype(float) / 30.0,
            f["days_since_last_activity"].astype(float) / 30.0,
            f["mean_rating_30d"].astype(float),
            _vector_columns(f["genre_affinity"], len(GENRES)),
        ]
    ).astype(np.float32)
    categorical = np.column_stack(
        [_codes(f["region"], REGIONS), _codes(f["age_band"], AGE_BANDS), f["is_kids"].fillna(False).astype(int).to_numpy()]
    )
    return TowerFeatures(
        dense=dense,
        categorical=categorical,
        cardinalities=[len(REGIONS), len(AGE_BANDS), 2],
        dense_names=list(USER_DENSE),
        categorical_names=list(USER_CATEGORICAL),
    )


def item_tower_features(frame: pd.DataFrame) -> TowerFeatures:
    """Rows in ``frame`` order: items columns (maturity_rating, primary_genre, genres) plus
    the Feast item features; the catalog's genres fill in for items without feature rows."""
    f = frame
    genres = _vector_columns(f["genre_vector"], len(GENRES))
    catalog = np.array([[1.0 if g in (row if row is not None else []) else 0.0 for g in GENRES] for row in f["genres"]], dtype=np.float32)
    genres = np.where(np.isnan(genres), catalog, genres)
    velocity = f["trend_velocity"].astype(float)
    age = f["title_age_days"].astype(float)
    dense = np.column_stack(
        [
            f["popularity_30d"].astype(float),
            np.log(velocity.where(velocity > 0)),
            f["item_mean_rating_30d"].astype(float),
            np.log1p(age.clip(lower=0)),
            genres,
        ]
    ).astype(np.float32)
    categorical = np.column_stack([_codes(f["maturity_rating"], MATURITY_RATINGS), _codes(f["primary_genre"], GENRES)])
    return TowerFeatures(
        dense=dense,
        categorical=categorical,
        cardinalities=[len(MATURITY_RATINGS), len(GENRES)],
        dense_names=list(ITEM_DENSE),
        categorical_names=list(ITEM_CATEGORICAL),
    )


def index_pairs(frame: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user_idx, item_idx) of the frame's rows in the given sorted id arrays."""
    u = np.searchsorted(user_ids, frame["user_id"].to_numpy())
    i = np.searchsorted(item_ids, frame["item_id"].to_numpy())
    if (user_ids[np.minimum(u, len(user_ids) - 1)] != frame["user_id"].to_numpy()).any():
        raise ValueError("training rows reference users outside the user table")
    if (item_ids[np.minimum(i, len(item_ids) - 1)] != frame["item_id"].to_numpy()).any():
        raise ValueError("training rows reference items outside the catalog")
    return u.astype(np.int64), i.astype(np.int64)
