"""Feature assets: Spark over the Delta event table, written back to Delta per day.

Each asset processes a range of days in one Spark job (single-run backfills), reads the
upstream window it needs straight from Delta (the rolling windows are declared with
``TimeWindowPartitionMapping`` for lineage), and replaces exactly its days.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
from pydantic import Field

from recsys_assets.features import transforms as T
from recsys_assets.partitions import daily_partitions, partition_days
from recsys_assets.quality.basic import not_null_check, row_count_check, structural_check_specs, unique_key_check
from resources.lakehouse import LakehouseResource, day_predicate, table_metadata
from resources.spark import SparkResource

GROUP = "features"
OWNERS = ["team:ml-platform"]
WINDOW_DAYS = 30


def window_dep(asset: str, window_days: int) -> dg.AssetDep:
    """Depend on the last ``window_days`` partitions of ``asset`` (fewer at the start of history)."""
    return dg.AssetDep(
        asset,
        partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(window_days - 1), allow_nonexistent_upstream_partitions=True),
    )


def ingested_days(lakehouse: LakehouseResource, start: dt.date, end: dt.date) -> set[dt.date]:
    """Days of [start, end] that ingestion has processed (even if they had no events)."""
    if not lakehouse.exists("ingestion_audit"):
        return set()
    return set(lakehouse.read_range("ingestion_audit", start, end, columns=["event_date"]).column("event_date").to_pylist())


def window_coverage(lakehouse: LakehouseResource, start: dt.date, end: dt.date, window: int) -> dict:
    """Which partitions of the run had an incomplete upstream window, for the metadata."""
    have = ingested_days(lakehouse, start - dt.timedelta(days=window - 1), end)
    incomplete = {}
    for day in T.day_range(start, end):
        n = sum(1 for d in T.day_range(day - dt.timedelta(days=window - 1), day) if d in have)
        if n < window:
            incomplete[day.isoformat()] = n
    return {
        "window_days": window,
        "window_complete": not incomplete,
        "incomplete_partitions": dg.MetadataValue.json(incomplete),
    }


def _write_and_check(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lakehouse: LakehouseResource,
    name: str,
    df,
    schema: pa.Schema,
    start: dt.date,
    end: dt.date,
    day_column: str,
    key_columns: list[str],
    expected_days: set[dt.date],
    extra_metadata: dict,
    rows_every_day: bool = True,
) -> Iterator:
    commit = {"dagster_run_id": context.run.run_id, "partitions": f"{start}..{end}"}
    version = spark.write_delta_range(df, lakehouse, name, schema, start, end, column=day_column, commit_metadata=commit)
    written = lakehouse.read_range(name, start, end, column=day_column, columns=list(dict.fromkeys([*key_columns, day_column])))
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, name, version),
            "partition_range": f"{start}..{end}",
            "dagster/row_count": written.num_rows,
            **extra_metadata,
        }
    )
    yield row_count_check(name, written, day_column, expected_days, per_day=rows_every_day)
    yield not_null_check(name, written, key_columns)
    yield unique_key_check(name, written, [k for k in key_columns if k != "feature_timestamp"] + [day_column])


def _days_with_events(lakehouse: LakehouseResource, start: dt.date, end: dt.date) -> set[dt.date]:
    if not lakehouse.exists("ingestion_audit"):
        return set()
    audit = lakehouse.read_range("ingestion_audit", start, end, columns=["event_date", "valid_events"])
    return {d for d, n in zip(audit.column("event_date").to_pylist(), audit.column("valid_events").to_pylist()) if n}


_COMMON = dict(
    group_name=GROUP,
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"spark", "delta"},
)


# The daily grain every user feature is rolled up from: computing windows from daily
# aggregates instead of raw events keeps a 30-day window to 30 small rows per user.
@dg.asset(
    deps=["raw_events", "items"],
    check_specs=structural_check_specs("user_daily_activity", daily_partitions, unique_on=["user_id", "event_date"]),
    **_COMMON,
)
def user_daily_activity(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, spark: SparkResource) -> Iterator:
    """Per user per day of activity: counts by event type, watch seconds, completions, ratings
    (count and mean), positive/negative feedback, distinct positively-engaged items and genre counts.

    Grain: one row per (`user_id`, `event_date`) with at least one event. Daily partitions
    on `event_date` (UTC), same days as `raw_events`.
    """
    start, end = partition_days(context)
    events = spark.read_delta(lakehouse, "raw_events", day_predicate("event_date", start, end))
    df = T.user_daily_activity(events, spark.read_delta(lakehouse, "items"))
    yield from _write_and_check(
        context, spark, lakehouse, "user_daily_activity", df, T.USER_DAILY_ACTIVITY_SCHEMA, start, end,
        "event_date", ["user_id", "event_date"], _days_with_events(lakehouse, start, end), {},
    )  # fmt: skip


# What the model and the serving layer know about a user at the end of a day.
@dg.asset(
    deps=[window_dep("user_daily_activity", WINDOW_DAYS), "items"],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=50), warn_window=dt.timedelta(hours=26)),
    check_specs=structural_check_specs("user_features", daily_partitions, unique_on=["user_id", "feature_date"]),
    **_COMMON,
)
def user_features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, spark: SparkResource) -> Iterator:
    """Per user as of the end of each day: 1/7/30-day event and positive counts, plays, completions,
    watch time, rating count and mean, thumbs down, active days, days since last activity,
    distinct items, normalised genre affinity (sums to 1) and favourite genre.

    Grain: one row per (`user_id`, `feature_date`) for users active in the 30 days up to that
    day. Daily partitions on `feature_date`; `feature_timestamp` (end of day) is the Feast
    event time. The first 29 days of history use the days that exist (see metadata).
    """
    start, end = partition_days(context)
    window_start = start - dt.timedelta(days=WINDOW_DAYS - 1)
    daily = spark.read_delta(lakehouse, "user_daily_activity", day_predicate("event_date", window_start, end))
    days = T.days_frame(spark.get_session(), T.day_range(start, end))
    df = T.user_features(daily, spark.read_delta(lakehouse, "items"), days, WINDOW_DAYS)
    expected = {d for d in T.day_range(start, end) if _days_with_events(lakehouse, d - dt.timedelta(days=WINDOW_DAYS - 1), d)}
    yield from _write_and_check(
        context, spark, lakehouse, "user_features", df, T.USER_FEATURES_SCHEMA, start, end,
        "feature_date", ["user_id", "feature_timestamp"], expected, window_coverage(lakehouse, start, end, WINDOW_DAYS),
    )  # fmt: skip


# The item tower's inputs and the ranking signals (popularity, trend, quality) per title.
@dg.asset(
    deps=[window_dep("raw_events", WINDOW_DAYS), "items"],
    check_specs=structural_check_specs("item_features", daily_partitions, unique_on=["item_id", "feature_date"]),
    **_COMMON,
)
def item_features(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, spark: SparkResource) -> Iterator:
    """Per catalog item as of the end of each day: 1/7/30-day views and positive interactions,
    7-day impressions/clicks/CTR, 30-day rating count and mean, trend velocity (7-day vs
    30-day rate), log popularity, genre vector, primary genre, age of title in days, maturity
    rating and availability.

    Grain: one row per (`item_id`, `feature_date`) for every catalog item (zeros without
    activity). Daily partitions on `feature_date`; `feature_timestamp` is the end of the day.
    """
    start, end = partition_days(context)
    window_start = start - dt.timedelta(days=WINDOW_DAYS - 1)
    events = spark.read_delta(lakehouse, "raw_events", day_predicate("event_date", window_start, end))
    days = T.days_frame(spark.get_session(), T.day_range(start, end))
    df = T.item_features(T.item_daily_activity(events), spark.read_delta(lakehouse, "items"), days, WINDOW_DAYS)
    yield from _write_and_check(
        context, spark, lakehouse, "item_features", df, T.ITEM_FEATURES_SCHEMA, start, end,
        "feature_date", ["item_id", "feature_timestamp"], set(T.day_range(start, end)), window_coverage(lakehouse, start, end, WINDOW_DAYS),
    )  # fmt: skip


class SimilarityConfig(dg.Config):
    window_days: int = Field(default=WINDOW_DAYS, description="Days of co-engagement considered")
    top_k: int = Field(default=50, description="Similar items kept per item")
    min_co_count: int = Field(default=2, description="Minimum users who engaged with both items")
    max_items_per_user: int = Field(default=200, description="Most recent items per user that count (bounds the pair expansion)")


# "Because you watched X": items the same people engaged with, normalised so that a
# blockbuster everyone watches does not top every list.
@dg.asset(
    deps=[window_dep("raw_events", WINDOW_DAYS)],
    check_specs=structural_check_specs("item_similarities", daily_partitions, unique_on=["item_id", "feature_date"]),
    **_COMMON,
)
def item_similarities(
    context: dg.AssetExecutionContext, config: SimilarityConfig, lakehouse: LakehouseResource, spark: SparkResource
) -> Iterator:
    """For each item as of the end of each day, its top-50 co-engaged items with cosine scores
    `co(i,j) / sqrt(n_i * n_j)` over the last 30 days (configurable), co-occurrence counts and the
    item's number of engaged users. Pairs need at least 2 common users.

    Grain: one row per (`item_id`, `feature_date`) with list columns `similar_item_ids`,
    `similarity_scores`, `co_counts` (rank order). Daily partitions on `feature_date`.
    """
    start, end = partition_days(context)
    window_start = start - dt.timedelta(days=config.window_days - 1)
    events = spark.read_delta(lakehouse, "raw_events", day_predicate("event_date", window_start, end))
    days = T.days_frame(spark.get_session(), T.day_range(start, end))
    df = T.item_similarities(
        T.positive_pairs(events), days, config.window_days, config.top_k, config.min_co_count, config.max_items_per_user
    )
    expected = {d for d in T.day_range(start, end) if _days_with_events(lakehouse, d - dt.timedelta(days=config.window_days - 1), d)}
    yield from _write_and_check(
        context, spark, lakehouse, "item_similarities", df, T.ITEM_SIMILARITIES_SCHEMA, start, end,
        "feature_date", ["item_id", "feature_timestamp"], expected,
        {**window_coverage(lakehouse, start, end, config.window_days), "top_k": config.top_k, "min_co_count": config.min_co_count},
        rows_every_day=False,  # a sparse early day can rightly have no pair seen by min_co_count users
    )  # fmt: skip


class TrendingConfig(dg.Config):
    top_n: int = Field(default=50, description="Items per region and day")
    min_support: int = Field(default=3, description="Minimum distinct users engaging with an item that day")


# What is hot right now in each region: the row of the home page and the cold-start list.
@dg.asset(
    deps=["raw_events", "users"],
    check_specs=structural_check_specs("trending_items", daily_partitions, unique_on=["region", "feature_date"]),
    **_COMMON,
)
def trending_items(
    context: dg.AssetExecutionContext, config: TrendingConfig, lakehouse: LakehouseResource, spark: SparkResource
) -> Iterator:
    """Per region (NA, LATAM, EMEA, APAC) and `GLOBAL`, the day's top items by distinct users with
    a positive interaction, with at least 3 such users (configurable).

    Grain: one row per (`region`, `feature_date`) for every region and day, with list columns
    `item_ids`, `scores`, `distinct_users` in rank order (empty when nothing reached the
    threshold). Daily partitions on `feature_date`.
    """
    start, end = partition_days(context)
    events = spark.read_delta(lakehouse, "raw_events", day_predicate("event_date", start, end))
    days = T.days_frame(spark.get_session(), T.day_range(start, end))
    df = T.trending_items(events, spark.read_delta(lakehouse, "users"), days, top_n=config.top_n, min_support=config.min_support)
    yield from _write_and_check(
        context, spark, lakehouse, "trending_items", df, T.TRENDING_SCHEMA, start, end,
        "feature_date", ["region", "feature_timestamp"], set(T.day_range(start, end)),
        {"top_n": config.top_n, "min_support": config.min_support},
    )  # fmt: skip
