"""The daily partitions every event-time asset shares (UTC days).

They start at the first day of data the platform holds, read from the landing
manifest when the Definitions load, so that right after ``recsys import-movielens``
or ``recsys simulate`` every day of the data is a partition with no configuration.
``RECSYS_PARTITIONS_START`` overrides it; with no data yet the last 30 days are used.
"""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg

from recsys_assets import settings

log = logging.getLogger(__name__)


def first_partition_day() -> dt.date:
    override = settings.partitions_start_override()
    if override:
        return dt.date.fromisoformat(override)
    try:
        from recsys_assets.ingestion.manifest import day_span
        from resources.lakehouse import LakehouseResource

        span = day_span(LakehouseResource())
    except Exception as exc:  # an unreachable lakehouse must not stop the code location from loading
        log.warning("could not read the landing manifest for the partition start: %s", exc)
        span = None
    if span is not None:
        return span[0]
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=30)


daily_partitions = dg.DailyPartitionsDefinition(start_date=first_partition_day().isoformat(), timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The closed day range [first, last] a (possibly multi-partition) run covers."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()
