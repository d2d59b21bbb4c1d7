"""Feature transformations on small hand-made frames with known answers."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from recsys_assets.features import transforms as T
from recsys_assets.vocabulary import GENRE_INDEX

D = dt.date(2024, 3, 10)


def ts(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute)


EVENT_COLS = "user_id long, item_id long, event_type string, value double, occurred_at timestamp, event_date date"


@pytest.fixture
def items(spark):
    rows = [
        (1, ["Comedy"], "Comedy", dt.date(2020, 1, 1), "PG", True, None),
        (2, ["Comedy"], "Comedy", dt.date(2024, 3, 1), "PG", True, None),
        (3, ["Comedy", "Romance"], "Comedy", None, "R", True, None),
        (4, ["Drama"], "Drama", dt.date(2024, 3, 9), "PG-13", True, dt.date(2024, 3, 11)),
        (5, ["Horror"], "Horror", dt.date(2000, 1, 1), "R", False, None),
    ]
    return spark.createDataFrame(
        rows, "item_id long, genres array<string>, primary_genre string, release_date date, maturity_rating string, is_available boolean, available_from date"
    )


def events_df(spark, rows):
    return spark.createDataFrame(rows, EVENT_COLS)


def test_user_daily_activity_counts_and_genres(spark, items):
    ev = events_df(
        spark,
        [
            (7, 1, "impression", None, ts(D, 10), D),
            (7, 1, "click", None, ts(D, 10, 1), D),
            (7, 1, "play", 1200.0, ts(D, 10, 2), D),
            (7, 1, "complete", 1200.0, ts(D, 11), D),
            (7, 4, "rating", 5.0, ts(D, 12), D),
            (7, 3, "rating", 3.0, ts(D, 13), D),  # rating 3: not positive, not negative
            (7, 5, "rating", 1.0, ts(D, 14), D),  # rating 1: negative
            (7, 2, "thumbs_down", None, ts(D, 15), D),
        ],
    )
    row = T.user_daily_activity(ev, items).collect()[0].asDict()
    assert (row["events"], row["impressions"], row["clicks"], row["plays"], row["completes"], row["ratings"]) == (8, 1, 1, 1, 1, 3)
    assert row["watch_seconds"] == 1200.0  # plays only: the complete repeats the same watch
    assert row["rating_mean"] == pytest.approx(3.0)
    assert (row["positive_events"], row["negative_events"], row["thumbs_down"]) == (4, 2, 1)
    assert row["engaged_items"] == [1, 4]
    genre_counts = row["genre_counts"]
    assert genre_counts[GENRE_INDEX["Comedy"]] == 1 and genre_counts[GENRE_INDEX["Drama"]] == 1
    assert sum(genre_counts) == 2
    assert row["last_event_at"] == ts(D, 15)


def daily_row(user, day, events=1, positives=1, items=(), plays=0):
    zeros = [0.0] * T.N_GENRES
    return (user, events, 0, 0, plays, 0, 0, 0.0, None, 0, 0, 0.0, positives, 0, list(items), zeros, ts(day), day)


DAILY_COLS = (
    "user_id long, events long, impressions long, clicks long, plays long, completes long, ratings long, rating_sum double, "
    "rating_mean double, thumbs_up long, thumbs_down long, watch_seconds double, positive_events long, negative_events long, "
    "engaged_items array<bigint>, genre_counts array<float>, last_event_at timestamp, event_date date"
)


def test_user_features_rolling_windows(spark, items):
    # one event a day for 40 days, as of the 40th day
    days = [D - dt.timedelta(days=i) for i in range(40)]
    daily = spark.createDataFrame([daily_row(7, d, events=1, positives=1, plays=1) for d in days], DAILY_COLS)
    f = T.user_features(daily, items, T.days_frame(spark, [D]), window=30).collect()[0].asDict()
    assert (f["events_1d"], f["events_7d"], f["events_30d"]) == (1, 7, 30)
    assert (f["plays_7d"], f["plays_30d"], f["active_days_30d"]) == (7, 30, 30)
    assert f["days_since_last_activity"] == 0
    assert f["feature_date"] == D
    assert f["feature_timestamp"] == dt.datetime(2024, 3, 10, 23, 59, 59, 999999)


def test_genre_affinity_of_three_comedies_and_a_drama(spark, items):
    # items 1, 2 are comedies, 4 is a drama; item 3 is Comedy+Romance, not watched here.
    daily = spark.createDataFrame(
        [daily_row(7, D - dt.timedelta(days=3), items=[1, 2]), daily_row(7, D - dt.timedelta(days=1), items=[2, 4])], DAILY_COLS
    )
    extra_comedy = spark.createDataFrame([(6, ["Comedy"], "Comedy", None, "PG", True, None)], items.schema)
    f = T.user_features(
        spark.createDataFrame([daily_row(7, D, items=[6])], DAILY_COLS).unionByName(daily), items.unionByName(extra_comedy), T.days_frame(spark, [D])
    ).collect()[0]
    affinity = f["genre_affinity"]
    assert affinity[GENRE_INDEX["Comedy"]] == pytest.approx(0.75)
    assert affinity[GENRE_INDEX["Drama"]] == pytest.approx(0.25)
    assert sum(affinity) == pytest.approx(1.0)
    assert f["favourite_genre"] == "Comedy"
    assert f["distinct_items_30d"] == 4
    assert f["days_since_last_activity"] == 0


def test_user_without_positive_history_has_zero_affinity(spark, items):
    daily = spark.createDataFrame([daily_row(7, D - dt.timedelta(days=2), positives=0)], DAILY_COLS)
    f = T.user_features(daily, items, T.days_frame(spark, [D])).collect()[0]
    assert f["genre_affinity"] == [0.0] * T.N_GENRES and f["favourite_genre"] is None
    assert f["days_since_last_activity"] == 2 and f["events_1d"] == 0


def test_item_features_windows_velocity_and_catalog_rows(spark, items):
    rows = []
    for i in range(30):  # item 1: one play a day for 30 days
        day = D - dt.timedelta(days=i)
        rows.append((1, 1, "play", 60.0, ts(day), day))
    for i in range(7):  # item 2: three plays a day for the last week, plus impressions and a click
        day = D - dt.timedelta(days=i)
        rows += [(2, 2, "play", 60.0, ts(day), day)] * 3
    rows += [(3, 2, "impression", None, ts(D), D)] * 4 + [(3, 2, "click", None, ts(D), D)]
    rows += [(3, 3, "rating", 4.0, ts(D), D), (4, 3, "rating", 2.0, ts(D), D)]
    daily = T.item_daily_activity(events_df(spark, rows))
    f = {r["item_id"]: r.asDict() for r in T.item_features(daily, items, T.days_frame(spark, [D])).collect()}
    assert set(f) == {1, 2, 3, 4, 5}  # every catalog item, active or not
    assert (f[1]["views_1d"], f[1]["views_7d"], f[1]["views_30d"]) == (1, 7, 30)
    assert f[1]["trend_velocity"] == pytest.approx(((7 + 1) / 7) / ((30 + 1) / 30))
    assert f[2]["trend_velocity"] > 1.5 > f[1]["trend_velocity"]  # item 2 is heating up
    assert (f[2]["impressions_7d"], f[2]["clicks_7d"]) == (4, 1) and f[2]["ctr_7d"] == pytest.approx(0.25)
    assert f[3]["item_mean_rating_30d"] == pytest.approx(3.0) and f[3]["item_positives_30d"] == 1
    assert f[5]["views_30d"] == 0 and f[5]["ctr_7d"] is None and f[5]["is_available"] is False
    assert f[4]["is_available"] is False  # available from tomorrow
    assert f[2]["title_age_days"] == 9 and f[3]["title_age_days"] is None
    assert f[1]["popularity_30d"] == pytest.approx(math.log1p(30))
    assert f[4]["genre_vector"][GENRE_INDEX["Drama"]] == 1.0


def test_item_similarities_are_normalised_against_blockbusters(spark):
    # item 9 is a blockbuster everyone watches; items 1 and 2 are a niche pair watched together.
    rows = []
    for user in range(1, 11):
        rows.append((user, 9, "play", 60.0, ts(D), D))
    for user in (1, 2, 3):
        rows += [(user, 1, "play", 60.0, ts(D), D), (user, 2, "play", 60.0, ts(D), D)]
    rows.append((4, 1, "play", 60.0, ts(D), D))
    pairs = T.positive_pairs(events_df(spark, rows))
    sims = {r["item_id"]: r.asDict() for r in T.item_similarities(pairs, T.days_frame(spark, [D]), min_co_count=2).collect()}
    # co(1,2)=3, n1=4, n2=3 -> 3/sqrt(12); co(1,9)=4, n9=10 -> 4/sqrt(40)
    assert sims[1]["similar_item_ids"] == [2, 9]
    assert sims[1]["similarity_scores"] == pytest.approx([3 / math.sqrt(12), 4 / math.sqrt(40)])
    assert sims[1]["co_counts"] == [3, 4] and sims[1]["item_users"] == 4
    assert sims[2]["similar_item_ids"][0] == 1
    assert sims[9]["similar_item_ids"] == [1, 2]  # raw counts would say the same, but scores are low
    assert max(sims[9]["similarity_scores"]) < sims[1]["similarity_scores"][0]


def test_item_similarities_respect_window_and_min_support(spark):
    old = D - dt.timedelta(days=40)
    rows = [(u, 1, "play", 60.0, ts(old), old) for u in (1, 2)] + [(u, 2, "play", 60.0, ts(old), old) for u in (1, 2)]
    rows += [(5, 3, "play", 60.0, ts(D), D), (5, 4, "play", 60.0, ts(D), D)]  # one common user only
    out = T.item_similarities(T.positive_pairs(events_df(spark, rows)), T.days_frame(spark, [D]), window=30, min_co_count=2).collect()
    assert out == []


def _reference_similarities(rows, day, window, top_k, min_co_count, max_items_per_user):
    """Brute force in plain Python: the asset's definition, one as-of day."""
    last = {}
    for user, item, event_type, _, occurred_at, event_date in rows:
        if event_type == "play" and day - dt.timedelta(days=window) < event_date <= day:
            last[(user, item)] = max(last.get((user, item), occurred_at), occurred_at)
    per_user = {}
    for (user, item), at in last.items():
        per_user.setdefault(user, []).append((at, item))
    baskets = {u: {i for _, i in sorted(v, key=lambda p: (-p[0].timestamp(), p[1]))[:max_items_per_user]} for u, v in per_user.items()}
    n = {}
    co = {}
    for basket in baskets.values():
        for i in basket:
            n[i] = n.get(i, 0) + 1
            for j in basket:
                if i != j:
                    co[(i, j)] = co.get((i, j), 0) + 1
    out = {}
    for (i, j), c in co.items():
        if c >= min_co_count:
            score = float(np.float32(c / math.sqrt(n[i] * n[j])))  # scores are stored as float32
            out.setdefault(i, []).append((-score, -c, j))
    return {i: [(j, -c) for _, c, j in sorted(v)[:top_k]] for i, v in out.items()}


def test_item_similarities_match_a_brute_force_reference(spark):
    import random

    rng = random.Random(7)
    days = [D - dt.timedelta(days=k) for k in range(6)]
    rows = []
    for user in range(1, 41):
        for _ in range(rng.randint(1, 12)):
            day = rng.choice(days + [D - dt.timedelta(days=20)])
            rows.append((user, rng.randint(1, 15), "play", 60.0, ts(day, rng.randint(0, 23), rng.randint(0, 59)), day))
    params = dict(window=3, top_k=4, min_co_count=2, max_items_per_user=5)
    out = T.item_similarities(T.positive_pairs(events_df(spark, rows)), T.days_frame(spark, days[:3]), **params).collect()
    got = {}
    for r in out:
        got.setdefault(r["feature_date"], {})[r["item_id"]] = list(zip(r["similar_item_ids"], r["co_counts"]))
    for day in days[:3]:
        expected = _reference_similarities(rows, day, **params)
        assert expected, "the random case should produce similarities"
        assert got.get(day, {}) == expected


def test_trending_by_region_with_min_support(spark):
    users = spark.createDataFrame([(u, "NA" if u <= 5 else "EMEA") for u in range(1, 9)], "user_id long, region string")
    rows = [(u, 10, "play", 60.0, ts(D), D) for u in range(1, 6)]  # item 10: 5 NA users
    rows += [(u, 20, "click", None, ts(D), D) for u in (6, 7, 8)]  # item 20: 3 EMEA users
    rows += [(u, 30, "play", 60.0, ts(D), D) for u in (1, 6)]  # item 30: 2 users, below support
    rows += [(1, 40, "impression", None, ts(D), D)] * 5  # impressions are not engagement
    out = {r["region"]: r.asDict() for r in T.trending_items(events_df(spark, rows), users, T.days_frame(spark, [D]), min_support=3).collect()}
    assert out["NA"]["item_ids"] == [10] and out["EMEA"]["item_ids"] == [20]
    assert out["GLOBAL"]["item_ids"] == [10, 20] and out["GLOBAL"]["scores"] == [5.0, 3.0]
    assert out["GLOBAL"]["feature_timestamp"] == dt.datetime(2024, 3, 10, 23, 59, 59, 999999)


def test_trending_gives_every_region_a_row_even_when_empty(spark):
    users = spark.createDataFrame([(1, "NA"), (2, "APAC")], "user_id long, region string")
    out = {r["region"]: r["item_ids"] for r in T.trending_items(events_df(spark, [(1, 10, "play", 1.0, ts(D), D)]), users, T.days_frame(spark, [D])).collect()}
    assert out == {"NA": [], "APAC": [], "GLOBAL": []}
