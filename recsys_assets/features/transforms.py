"""Feature transformations in Spark: pure functions from DataFrames to DataFrames.

Conventions shared by every feature table:

* ``feature_date`` is the day a row describes ("as of the end of this day", UTC) and
  the Delta partition column; ``feature_timestamp`` is the last microsecond of that day,
  the event timestamp Feast uses for point-in-time joins (a row only summarises events
  at or before its timestamp).
* Rolling windows of N days as of day D cover days (D - N, D].
* A *positive* interaction is a play, complete, thumbs up or click, or a rating of at
  least ``positive_rating`` (4 by default; how MovieLens ratings become watches).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from recsys_assets.vocabulary import GENRES, POSITIVE_EVENT_TYPES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

N_GENRES = len(GENRES)
UTC_US = pa.timestamp("us", tz="UTC")
FLOAT_LIST = pa.list_(pa.float32())


@dataclass(frozen=True)
class InteractionRules:
    """Which interactions count as positive / negative feedback."""

    positive_event_types: tuple[str, ...] = POSITIVE_EVENT_TYPES
    positive_rating: float = 4.0
    negative_rating: float = 2.0


def is_positive(rules: InteractionRules) -> Column:
    from pyspark.sql import functions as F

    return F.col("event_type").isin(*rules.positive_event_types) | (
        (F.col("event_type") == "rating") & (F.col("value") >= rules.positive_rating)
    )


def is_negative(rules: InteractionRules) -> Column:
    from pyspark.sql import functions as F

    return (F.col("event_type") == "thumbs_down") | ((F.col("event_type") == "rating") & (F.col("value") <= rules.negative_rating))


def genre_vector(genres_col: str = "genres") -> Column:
    """Multi-hot float vector over ``GENRES`` from an array of genre names."""
    from pyspark.sql import functions as F

    return F.array(*[F.when(F.array_contains(F.col(genres_col), g), 1.0).otherwise(0.0).cast("float") for g in GENRES])


def _sum_vectors(col: str) -> list[Column]:
    """Aggregates summing a fixed-length float array column element by element."""
    from pyspark.sql import functions as F

    return [F.sum(F.col(col)[i]).alias(f"_g{i}") for i in range(N_GENRES)]


def _vector_from_sums() -> Column:
    from pyspark.sql import functions as F

    return F.array(*[F.coalesce(F.col(f"_g{i}"), F.lit(0.0)).cast("float") for i in range(N_GENRES)])


def end_of_day(date_col: str = "feature_date") -> Column:
    """The last microsecond of a UTC day: the Feast event timestamp of that day's features."""
    from pyspark.sql import functions as F

    return F.expr(f"cast({date_col} as timestamp) + interval 1 day - interval 1 microsecond")


def days_frame(spark: SparkSession, days: Sequence[dt.date]) -> DataFrame:
    return spark.createDataFrame([(d,) for d in days], "feature_date date")


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# ------------------------------------------------------------------ user_daily_activity
USER_DAILY_ACTIVITY_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("events", pa.int64()),
        ("impressions", pa.int64()),
        ("clicks", pa.int64()),
        ("plays", pa.int64()),
        ("completes", pa.int64()),
        ("ratings", pa.int64()),
        ("rating_sum", pa.float64()),
        ("rating_mean", pa.float64()),
        ("thumbs_up", pa.int64()),
        ("thumbs_down", pa.int64()),
        ("watch_seconds", pa.float64()),
        ("positive_events", pa.int64()),
        ("negative_events", pa.int64()),
        ("engaged_items", pa.list_(pa.int64())),
        ("genre_counts", FLOAT_LIST),
        ("last_event_at", UTC_US),
        ("event_date", pa.date32()),
    ]
)


def user_daily_activity(events: DataFrame, items: DataFrame, rules: InteractionRules = InteractionRules()) -> DataFrame:
    """One row per user per day with activity: counts by type, watch time, ratings, feedback, genres.

    ``engaged_items`` are the distinct items the user interacted positively with that day;
    ``genre_counts[g]`` counts those items having genre ``GENRES[g]``.
    """
    from pyspark.sql import functions as F

    def count_type(t: str) -> Column:
        return F.sum(F.when(F.col("event_type") == t, 1).otherwise(0)).cast("long")

    ev = events.select("user_id", "item_id", "event_type", "value", "occurred_at", "event_date").withColumn(
        "_pos", is_positive(rules)
    ).withColumn("_neg", is_negative(rules))
    daily = ev.groupBy("user_id", "event_date").agg(
        F.count(F.lit(1)).alias("events"),
        count_type("impression").alias("impressions"),
        count_type("click").alias("clicks"),
        count_type("play").alias("plays"),
        count_type("complete").alias("completes"),
        count_type("rating").alias("ratings"),
        F.sum(F.when(F.col("event_type") == "rating", F.col("value")).otherwise(0.0)).alias("rating_sum"),
        count_type("thumbs_up").alias("thumbs_up"),
        count_type("thumbs_down").alias("thumbs_down"),
        F.sum(F.when(F.col("event_type") == "play", F.coalesce(F.col("value"), F.lit(0.0))).otherwise(0.0)).alias("watch_seconds"),
        F.sum(F.col("_pos").cast("long")).alias("positive_events"),
        F.sum(F.col("_neg").cast("long")).alias("negative_events"),
        F.array_sort(F.collect_set(F.when(F.col("_pos"), F.col("item_id")))).alias("engaged_items"),
        F.max("occurred_at").alias("last_event_at"),
    )
    genres = (
        ev.where(F.col("_pos"))
        .select("user_id", "event_date", "item_id")
        .distinct()
        .join(items.select("item_id", genre_vector().alias("_gv")), "item_id")
        .groupBy("user_id", "event_date")
        .agg(*_sum_vectors("_gv"))
        .select("user_id", "event_date", _vector_from_sums().alias("genre_counts"))
    )
    zeros = F.array(*[F.lit(0.0).cast("float")] * N_GENRES)
    return (
        daily.join(genres, ["user_id", "event_date"], "left")
        .withColumn("genre_counts", F.coalesce("genre_counts", zeros))
        .withColumn("rating_mean", F.when(F.col("ratings") > 0, F.col("rating_sum") / F.col("ratings")))
        .select(*USER_DAILY_ACTIVITY_SCHEMA.names)
    )


# ------------------------------------------------------------------------ user_features
USER_FEATURES_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("feature_timestamp", UTC_US),
        ("events_1d", pa.int64()),
        ("events_7d", pa.int64()),
        ("events_30d", pa.int64()),
        ("positives_1d", pa.int64()),
        ("positives_7d", pa.int64()),
        ("positives_30d", pa.int64()),
        ("plays_7d", pa.int64()),
        ("plays_30d", pa.int64()),
        ("completes_30d", pa.int64()),
        ("watch_seconds_30d", pa.float64()),
        ("ratings_30d", pa.int64()),
        ("mean_rating_30d", pa.float64()),
        ("thumbs_down_30d", pa.int64()),
        ("active_days_30d", pa.int64()),
        ("days_since_last_activity", pa.int32()),
        ("distinct_items_30d", pa.int64()),
        ("genre_affinity", FLOAT_LIST),
        ("favourite_genre", pa.string()),
        ("feature_date", pa.date32()),
    ]
)


def _window_sum(col: str, days: int) -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(F.col("event_date") > F.date_sub("feature_date", days), F.col(col)).otherwise(0))


def _windowed(daily: DataFrame, days: DataFrame, window: int) -> DataFrame:
    """Pair each as-of day with the daily rows of its window (D - window, D]."""
    from pyspark.sql import functions as F

    return days.join(
        daily, (daily.event_date <= days.feature_date) & (daily.event_date > F.date_sub(days.feature_date, window))
    )


def genre_affinity(counts: Column) -> Column:
    """Normalise genre counts to sum to 1 (all zeros when there are none)."""
    from pyspark.sql import functions as F

    total = F.aggregate(counts, F.lit(0.0), lambda acc, x: acc + x)
    return F.when(total > 0, F.transform(counts, lambda x: (x / total).cast("float"))).otherwise(
        F.transform(counts, lambda x: F.lit(0.0).cast("float"))
    )


def favourite_genre(affinity: Column) -> Column:
    """Name of the genre with the highest affinity (first on ties); null without history."""
    from pyspark.sql import functions as F

    best = F.array_max(affinity)
    position = F.array_position(affinity, best)
    names = F.array(*[F.lit(g) for g in GENRES])
    return F.when(best > 0, F.element_at(names, position.cast("int")))


def user_features(daily: DataFrame, items: DataFrame, days: DataFrame, window: int = 30) -> DataFrame:
    """Per user, as of the end of each day in ``days``: 1/7/30-day activity, affinity, recency.

    Users with no activity in the window have no row that day (Feast serves their last
    row until its TTL). ``genre_affinity`` counts each distinct positively-engaged item
    of the window once, normalised to sum to 1.
    """
    from pyspark.sql import functions as F

    w = _windowed(daily, days, window)
    agg = w.groupBy("user_id", "feature_date").agg(
        _window_sum("events", 1).alias("events_1d"),
        _window_sum("events", 7).alias("events_7d"),
        F.sum("events").alias("events_30d"),
        _window_sum("positive_events", 1).alias("positives_1d"),
        _window_sum("positive_events", 7).alias("positives_7d"),
        F.sum("positive_events").alias("positives_30d"),
        _window_sum("plays", 7).alias("plays_7d"),
        F.sum("plays").alias("plays_30d"),
        F.sum("completes").alias("completes_30d"),
        F.sum("watch_seconds").alias("watch_seconds_30d"),
        F.sum("ratings").alias("ratings_30d"),
        F.sum("rating_sum").alias("_rating_sum"),
        F.sum("thumbs_down").alias("thumbs_down_30d"),
        F.count(F.lit(1)).alias("active_days_30d"),
        F.max("event_date").alias("_last_active"),
        F.array_distinct(F.flatten(F.collect_list("engaged_items"))).alias("_items"),
    )
    item_genres = items.select("item_id", genre_vector().alias("_gv"))
    genres = (
        agg.select("user_id", "feature_date", F.explode("_items").alias("item_id"))
        .join(item_genres, "item_id")
        .groupBy("user_id", "feature_date")
        .agg(*_sum_vectors("_gv"))
        .select("user_id", "feature_date", _vector_from_sums().alias("_genre_counts"))
    )
    zeros = F.array(*[F.lit(0.0).cast("float")] * N_GENRES)
    out = (
        agg.join(genres, ["user_id", "feature_date"], "left")
        .withColumn("genre_affinity", genre_affinity(F.coalesce("_genre_counts", zeros)))
        .withColumn("favourite_genre", favourite_genre(F.col("genre_affinity")))
        .withColumn("mean_rating_30d", F.when(F.col("ratings_30d") > 0, F.col("_rating_sum") / F.col("ratings_30d")))
        .withColumn("days_since_last_activity", F.datediff("feature_date", "_last_active").cast("int"))
        .withColumn("distinct_items_30d", F.size("_items").cast("long"))
        .withColumn("feature_timestamp", end_of_day())
    )
    return out.select(*[F.col(c).cast(_spark_type(USER_FEATURES_SCHEMA.field(c).type)) for c in USER_FEATURES_SCHEMA.names])


# ------------------------------------------------------------------------ item_features
ITEM_FEATURES_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("feature_timestamp", UTC_US),
        ("views_1d", pa.int64()),
        ("views_7d", pa.int64()),
        ("views_30d", pa.int64()),
        ("item_positives_1d", pa.int64()),
        ("item_positives_7d", pa.int64()),
        ("item_positives_30d", pa.int64()),
        ("impressions_7d", pa.int64()),
        ("clicks_7d", pa.int64()),
        ("ctr_7d", pa.float64()),
        ("item_ratings_30d", pa.int64()),
        ("item_mean_rating_30d", pa.float64()),
        ("trend_velocity", pa.float64()),
        ("popularity_30d", pa.float64()),
        ("genre_vector", FLOAT_LIST),
        ("primary_genre", pa.string()),
        ("title_age_days", pa.int32()),
        ("maturity_rating", pa.string()),
        ("is_available", pa.bool_()),
        ("feature_date", pa.date32()),
    ]
)


def item_daily_activity(events: DataFrame, rules: InteractionRules = InteractionRules()) -> DataFrame:
    """Per item per day: views (plays), impressions, clicks, positives, ratings."""
    from pyspark.sql import functions as F

    def count_if(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0)).cast("long")

    return events.withColumn("_pos", is_positive(rules)).groupBy("item_id", "event_date").agg(
        count_if(F.col("event_type") == "play").alias("views"),
        count_if(F.col("event_type") == "impression").alias("impressions"),
        count_if(F.col("event_type") == "click").alias("clicks"),
        count_if(F.col("_pos")).alias("positives"),
        count_if(F.col("event_type") == "rating").alias("ratings"),
        F.sum(F.when(F.col("event_type") == "rating", F.col("value")).otherwise(0.0)).alias("rating_sum"),
    )


def item_features(item_daily: DataFrame, items: DataFrame, days: DataFrame, window: int = 30, smoothing: float = 1.0) -> DataFrame:
    """Per catalog item per day: view/positive windows, CTR, rating, trend velocity, catalog attributes.

    ``trend_velocity`` compares the daily rate of positives over the last 7 days with the
    last ``window`` days, smoothed: ``((pos_7d + s) / 7) / ((pos_window + s) / window)``;
    above 1 the title is heating up. ``popularity_30d`` is ``log1p(item_positives_30d)``.
    Counts that would share a name with a user feature carry an ``item_`` prefix, so
    user and item views join in one frame without collisions.
    Every catalog item gets a row every day (zeros without activity).
    """
    from pyspark.sql import functions as F

    w = _windowed(item_daily, days, window)
    agg = w.groupBy("item_id", "feature_date").agg(
        _window_sum("views", 1).alias("views_1d"),
        _window_sum("views", 7).alias("views_7d"),
        F.sum("views").alias("views_30d"),
        _window_sum("positives", 1).alias("item_positives_1d"),
        _window_sum("positives", 7).alias("item_positives_7d"),
        F.sum("positives").alias("item_positives_30d"),
        _window_sum("impressions", 7).alias("impressions_7d"),
        _window_sum("clicks", 7).alias("clicks_7d"),
        F.sum("ratings").alias("item_ratings_30d"),
        F.sum("rating_sum").alias("_rating_sum"),
    )
    catalog = items.select(
        "item_id", genre_vector().alias("genre_vector"), "primary_genre", "release_date", "maturity_rating", "is_available", "available_from"
    ).crossJoin(days)
    counts = [c for c in agg.columns if c not in ("item_id", "feature_date")]
    out = catalog.join(agg, ["item_id", "feature_date"], "left").fillna(0, subset=counts)
    out = (
        out.withColumn("ctr_7d", F.when(F.col("impressions_7d") > 0, F.col("clicks_7d") / F.col("impressions_7d")))
        .withColumn("item_mean_rating_30d", F.when(F.col("item_ratings_30d") > 0, F.col("_rating_sum") / F.col("item_ratings_30d")))
        .withColumn(
            "trend_velocity",
            ((F.col("item_positives_7d") + smoothing) / 7.0) / ((F.col("item_positives_30d") + smoothing) / float(window)),
        )
        .withColumn("popularity_30d", F.log1p(F.col("item_positives_30d").cast("double")))
        .withColumn("title_age_days", F.datediff("feature_date", "release_date").cast("int"))
        .withColumn(
            "is_available",
            F.col("is_available") & (F.col("available_from").isNull() | (F.col("available_from") <= F.col("feature_date"))),
        )
        .withColumn("feature_timestamp", end_of_day())
    )
    return out.select(*[F.col(c).cast(_spark_type(ITEM_FEATURES_SCHEMA.field(c).type)) for c in ITEM_FEATURES_SCHEMA.names])


# -------------------------------------------------------------------- item_similarities
ITEM_SIMILARITIES_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("feature_timestamp", UTC_US),
        ("similar_item_ids", pa.list_(pa.int64())),
        ("similarity_scores", FLOAT_LIST),
        ("co_counts", pa.list_(pa.int64())),
        ("item_users", pa.int64()),
        ("feature_date", pa.date32()),
    ]
)


def positive_pairs(events: DataFrame, rules: InteractionRules = InteractionRules()) -> DataFrame:
    """Distinct (user, item, day) positive engagements with the day's last engagement time."""
    from pyspark.sql import functions as F

    return (
        events.where(is_positive(rules))
        .groupBy("user_id", "item_id", "event_date")
        .agg(F.max("occurred_at").alias("last_at"))
    )


def item_similarities(
    pairs: DataFrame, days: DataFrame, window: int = 30, top_k: int = 50, min_co_count: int = 2, max_items_per_user: int = 200
) -> DataFrame:
    """For each item, as of each day, its ``top_k`` most co-engaged items over the window.

    Co-occurrence counts users who engaged positively with both items in the window.
    Scores are cosine-normalised, ``co(i, j) / sqrt(n_i * n_j)`` (``n`` = users per item),
    so a blockbuster everybody watches does not top every list. Pairs seen by fewer than
    ``min_co_count`` users are dropped; only each user's ``max_items_per_user`` most recent
    items count (bounds the quadratic pair expansion).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = _windowed(pairs, days, window).groupBy("feature_date", "user_id", "item_id").agg(F.max("last_at").alias("last_at"))
    recent = Window.partitionBy("feature_date", "user_id").orderBy(F.col("last_at").desc(), F.col("item_id"))
    ui = w.withColumn("_r", F.row_number().over(recent)).where(F.col("_r") <= max_items_per_user).drop("_r", "last_at")
    n_users = ui.groupBy("feature_date", "item_id").agg(F.count(F.lit(1)).alias("item_users"))
    # Co-occurrence is symmetric: expand and count each unordered pair once (half the
    # quadratic self-join, the cost of this asset), then mirror the surviving pairs.
    a, b = ui.alias("a"), ui.alias("b")
    half = (
        a.join(b, (F.col("a.feature_date") == F.col("b.feature_date")) & (F.col("a.user_id") == F.col("b.user_id")) & (F.col("a.item_id") < F.col("b.item_id")))
        .groupBy(F.col("a.feature_date").alias("feature_date"), F.col("a.item_id").alias("item_id"), F.col("b.item_id").alias("other_id"))
        .agg(F.count(F.lit(1)).alias("co_count"))
        .where(F.col("co_count") >= min_co_count)
    )
    co = half.unionByName(half.select("feature_date", F.col("other_id").alias("item_id"), F.col("item_id").alias("other_id"), "co_count"))
    ni = n_users.alias("ni")
    nj = n_users.select("feature_date", F.col("item_id").alias("other_id"), F.col("item_users").alias("other_users"))
    scored = co.join(ni, ["feature_date", "item_id"]).join(nj, ["feature_date", "other_id"]).withColumn(
        "score", (F.col("co_count") / F.sqrt(F.col("item_users") * F.col("other_users"))).cast("float")
    )
    rank = Window.partitionBy("feature_date", "item_id").orderBy(F.col("score").desc(), F.col("co_count").desc(), F.col("other_id"))
    top = scored.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= top_k)
    lists = top.groupBy("feature_date", "item_id", "item_users").agg(
        F.array_sort(F.collect_list(F.struct("_rank", "other_id", "score", "co_count"))).alias("_l")
    )
    return lists.select(
        "item_id",
        end_of_day().alias("feature_timestamp"),
        F.col("_l.other_id").alias("similar_item_ids"),
        F.col("_l.score").alias("similarity_scores"),
        F.col("_l.co_count").cast("array<bigint>").alias("co_counts"),
        F.col("item_users").cast("long"),
        "feature_date",
    )


# ------------------------------------------------------------------------ trending_items
TRENDING_SCHEMA = pa.schema(
    [
        ("region", pa.string()),
        ("feature_timestamp", UTC_US),
        ("item_ids", pa.list_(pa.int64())),
        ("scores", FLOAT_LIST),
        ("distinct_users", pa.list_(pa.int64())),
        ("feature_date", pa.date32()),
    ]
)
GLOBAL_REGION = "GLOBAL"


def trending_items(
    events: DataFrame,
    users: DataFrame,
    days: DataFrame,
    rules: InteractionRules = InteractionRules(),
    top_n: int = 50,
    min_support: int = 3,
) -> DataFrame:
    """Per region (and ``GLOBAL``) and day: the day's top items by distinct engaged users.

    An item needs at least ``min_support`` distinct users that day to trend. The score is
    the number of distinct users; ties go to more positive events, then lower id. Every
    region of ``users`` (and ``GLOBAL``) gets a row for every day of ``days``, with empty
    lists when nothing reached the support threshold.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    pos = events.where(is_positive(rules)).join(users.select("user_id", "region"), "user_id", "left").fillna(
        {"region": "unknown"}
    )
    regional = pos.select(F.col("event_date").alias("feature_date"), "region", "item_id", "user_id")
    both = regional.unionByName(regional.withColumn("region", F.lit(GLOBAL_REGION)))
    stats = both.groupBy("feature_date", "region", "item_id").agg(
        F.countDistinct("user_id").alias("users"), F.count(F.lit(1)).alias("positives")
    ).where(F.col("users") >= min_support)
    rank = Window.partitionBy("feature_date", "region").orderBy(F.col("users").desc(), F.col("positives").desc(), F.col("item_id"))
    top = stats.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= top_n)
    lists = top.groupBy("feature_date", "region").agg(F.array_sort(F.collect_list(F.struct("_rank", "item_id", "users"))).alias("_l"))
    regions = users.select("region").where(F.col("region").isNotNull()).union(
        users.sparkSession.createDataFrame([(GLOBAL_REGION,)], "region string")
    ).distinct()
    base = days.crossJoin(regions)
    return base.join(lists, ["feature_date", "region"], "left").select(
        "region",
        end_of_day().alias("feature_timestamp"),
        F.coalesce(F.col("_l.item_id"), F.array().cast("array<bigint>")).alias("item_ids"),
        F.coalesce(F.col("_l.users").cast("array<float>"), F.array().cast("array<float>")).alias("scores"),
        F.coalesce(F.col("_l.users").cast("array<bigint>"), F.array().cast("array<bigint>")).alias("distinct_users"),
        "feature_date",
    )


def _spark_type(arrow_type: pa.DataType):
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(arrow_type)
