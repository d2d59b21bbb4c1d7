"""Feature-store assets: the Feast registry and the online store."""

import contextlib
import datetime as dt
import io

import dagster as dg

from recsys_assets.features.assets import OWNERS
from recsys_assets.feature_store.realtime import ARCHIVE_SCHEMA, ARCHIVE_TABLE
from recsys_assets.recommendations.tables import LIVE_RECOMMENDATIONS_SCHEMA
from recsys_assets.retrieval.embeddings import ITEM_EMBEDDINGS_SCHEMA, USER_EMBEDDINGS_SCHEMA
from recsys_assets.features.transforms import day_range
from recsys_assets.partitions import daily_partitions, partition_days
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource

GROUP = "feature_store"
# Sources of views whose tables later assets write (model outputs, the push archive). Until
# then they exist empty, so `feast materialize(-incremental)` works on any stage of the graph.
SERVING_TABLES = {
    ARCHIVE_TABLE: ARCHIVE_SCHEMA,
    "item_embeddings": ITEM_EMBEDDINGS_SCHEMA,
    "user_embeddings": USER_EMBEDDINGS_SCHEMA,
    "live_recommendations": LIVE_RECOMMENDATIONS_SCHEMA,
}
# Daily feature views the online store serves, and the Delta table behind each.
DAILY_ONLINE_VIEWS = {
    "user_features": "user_features",
    "item_features": "item_features",
    "item_similarities": "item_similarities",
    "trending": "trending_items",
}


# The registry is what ML engineers query and what serving reads; applying it from the
# repository code keeps it exactly in step (objects removed from the code are removed here).
@dg.asset(
    group_name=GROUP,
    kinds={"feast"},
    owners=OWNERS,
    deps=["user_features", "item_features", "item_similarities", "trending_items"],
)
def feast_registry(context: dg.AssetExecutionContext, feast: FeastResource, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """The Feast registry of the platform: entities `user`, `item`, `region`; feature views over
    the Delta feature tables (`user_features`, `item_features`, `item_similarities`, `trending`),
    the push-fed `user_realtime_activity`; feature services `two_tower_training` and `serving`.

    Not partitioned: each materialization applies `feature_repo/recsys_features.py` and deletes
    registry objects that are no longer defined there. Tables of views that later assets fill
    (embeddings, live lists, the push archive) are created empty when missing, so Feast can
    materialize at any stage of the graph.
    """
    ensure_live(lakehouse, "feast_registry")
    for table, schema in SERVING_TABLES.items():
        if not lakehouse.exists(table):
            lakehouse.overwrite(table, schema.empty_table())
    diff = feast.apply(lakehouse.root_uri)
    cli_yaml = feast.write_cli_yaml()
    store = feast.store()
    views = sorted(v.name for v in store.list_feature_views())
    services = sorted(s.name for s in store.list_feature_services())
    context.log.info(f"applied {len(diff['applied'])} objects, deleted {diff['deleted']}")
    return dg.MaterializeResult(
        metadata={
            "registry": feast.registry_path,
            "cli_feature_store_yaml": dg.MetadataValue.path(str(cli_yaml)),
            "online_store": feast.online_store_type,
            "feature_views": dg.MetadataValue.json(views),
            "feature_services": dg.MetadataValue.json(services),
            "applied": dg.MetadataValue.json(diff["applied"]),
            "deleted": dg.MetadataValue.json(diff["deleted"]),
        }
    )


def ensure_live(lakehouse: LakehouseResource, what: str) -> None:
    """Serving-side writes (registry, online store) never happen in a staging backfill."""
    if lakehouse.staging_id:
        raise dg.Failure(
            f"{what} writes production serving state and cannot run in staging backfill {lakehouse.staging_id!r}: "
            "backfill with features_backfill_job, cut over, then materialize it"
        )


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)


def online_watermark(store, views: list[str]) -> dt.date | None:
    """The last day already materialized online for any of ``views`` (from the registry)."""
    ends = [
        end
        for name in views
        for _, end in store.get_feature_view(name).materialization_intervals
    ]
    return max(ends).astimezone(dt.timezone.utc).date() if ends else None


def materialize_days(store, views: list[str], first: dt.date, last: dt.date, log=None) -> list[dt.date]:
    """Materialize one day at a time, oldest first, so memory stays flat and the newest wins."""
    done = []
    for day in day_range(first, last):
        start, end = day_bounds(day)
        with contextlib.redirect_stdout(io.StringIO()):  # Feast prints a progress banner per call
            store.materialize(start_date=start, end_date=end, feature_views=views)
        done.append(day)
        if log:
            log.info(f"materialized {day} for {views}")
    return done


# Serving reads features online in milliseconds; this keeps the online store current,
# one day at a time.
@dg.asset(
    group_name=GROUP,
    kinds={"feast"},
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["feast_registry", "user_features", "item_features", "item_similarities", "trending_items"],
)
def online_features(context: dg.AssetExecutionContext, feast: FeastResource, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """The online store (sqlite locally, Redis in production) loaded with the daily feature views
    `user_features`, `item_features`, `item_similarities` and `trending` for the partition's days.

    Daily partitions: a run over days [a, b] materializes each day's rows in order, one day per
    Feast `materialize` call. Re-running an older day replays every later day already online up
    to the watermark, so the online store always ends on each entity's newest values.
    """
    ensure_live(lakehouse, "online_features")
    start, end = partition_days(context)
    store = feast.store()
    views = list(DAILY_ONLINE_VIEWS)
    watermark = online_watermark(store, views)
    last = max(end, watermark) if watermark else end
    days = materialize_days(store, views, start, last, context.log)
    return dg.MaterializeResult(
        metadata={
            "partition_range": f"{start}..{end}",
            "days_materialized": len(days),
            "replayed_through": last.isoformat(),
            "previous_watermark": watermark.isoformat() if watermark else "none",
            "feature_views": dg.MetadataValue.json(views),
            "online_store": feast.online_store_type,
        }
    )
