"""Ingestion assets: dimension snapshots and the validated, de-duplicated event table."""

import datetime as dt
import time

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as pads
from pydantic import Field

from recsys_assets.ingestion.dimensions import parse_items, parse_users
from recsys_assets.ingestion.events import (
    AUDIT_SCHEMA,
    DEAD,
    DEAD_LETTER_SCHEMA,
    RAW_EVENTS_SCHEMA,
    VALID,
    ValidationRules,
    audit,
    classify_events,
    outcomes,
    read_landing_lines,
)
from recsys_assets.ingestion.manifest import files_for_days, refresh_manifest
from recsys_assets.partitions import daily_partitions, partition_days
from recsys_assets.sources.landing import ITEMS_PREFIX, USERS_PREFIX
from resources.lakehouse import LakehouseResource, table_metadata
from resources.landing import LandingZoneResource
from resources.spark import SparkResource

OWNERS = ["team:data-platform"]
GROUP = "ingestion"


def _md_table(rows: list[tuple], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _load_dimension(context, landing: LandingZoneResource, lakehouse: LakehouseResource, prefix: str, parse) -> dg.MaterializeResult:
    store = landing.store()
    snapshot = store.latest_dimension(prefix)
    if snapshot is None:
        raise dg.Failure(
            f"no {prefix} snapshot in the landing zone ({store.uri(prefix)}/dt=YYYY-MM-DD/{prefix}.jsonl); "
            "run `recsys simulate` or `recsys import-movielens PATH` first"
        )
    parsed = parse(store.read_bytes(snapshot.key))
    if parsed.table.num_rows == 0:
        raise dg.Failure(f"{snapshot.uri} holds no valid {prefix} rows ({len(parsed.rejected)} rejected)")
    version = lakehouse.overwrite(prefix, parsed.table, commit_metadata={"dagster_run_id": context.run.run_id, "snapshot": snapshot.key})
    if parsed.rejected:
        context.log.warning(f"{len(parsed.rejected)} {prefix} rows rejected, e.g. {parsed.rejected[:3]}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, prefix, version),
            "dagster/row_count": parsed.table.num_rows,
            "snapshot": snapshot.uri,
            "rows_rejected": len(parsed.rejected),
            "rejected_sample": dg.MetadataValue.json(parsed.rejected[:10]),
            "duplicate_ids_replaced": parsed.duplicates_replaced,
        }
    )


# The user profile table: validation needs it to reject events of unknown users, and
# features/recommendations need regions, age bands and kids flags.
@dg.asset(group_name=GROUP, kinds={"delta", "python"}, owners=OWNERS)
def users(context: dg.AssetExecutionContext, landing: LandingZoneResource, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """User profiles from the newest ``users`` snapshot in the landing zone.

    Grain: one row per ``user_id`` (country, region, age, age band, kids flag, signup
    date). Not partitioned: each materialization replaces the table with the snapshot.
    Rows that cannot be typed are rejected (count and sample in the metadata).
    """
    return _load_dimension(context, landing, lakehouse, USERS_PREFIX, parse_users)


# The catalog: validation rejects events of unknown items; filters need maturity ratings
# and availability; the item tower needs genres and release dates.
@dg.asset(group_name=GROUP, kinds={"delta", "python"}, owners=OWNERS)
def items(context: dg.AssetExecutionContext, landing: LandingZoneResource, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """The catalog from the newest ``items`` snapshot in the landing zone.

    Grain: one row per ``item_id`` (title, genres, primary genre, release date, maturity
    rating, runtime, availability). Not partitioned: each materialization replaces the
    table with the snapshot.
    """
    return _load_dimension(context, landing, lakehouse, ITEMS_PREFIX, parse_items)


class IngestionConfig(dg.Config):
    """What counts as a valid event (see ``ValidationRules``)."""

    max_event_bytes: int = Field(default=16_384, description="Longer lines are dead-lettered as oversized_payload")
    max_late_days: int = Field(default=30, description="Events arriving more days after occurred_at are stale_timestamp")
    future_tolerance_seconds: int = Field(default=300, description="Allowed client clock skew ahead of ingested_at")

    def rules(self) -> ValidationRules:
        return ValidationRules(
            max_event_bytes=self.max_event_bytes,
            max_late_days=self.max_late_days,
            future_tolerance_seconds=self.future_tolerance_seconds,
        )


_PARTITIONED = dict(group_name=GROUP, owners=OWNERS, partitions_def=daily_partitions)
# Events arrive all day; the daily schedule runs at 01:00. Warn when a day was missed,
# fail when two were.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=50), warn_window=dt.timedelta(hours=26))


# Every downstream table trusts this one: typed, validated, one row per event_id per day,
# and re-running a day replaces it exactly. Dead letters and the audit come from the same
# pass so the books always balance.
@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_events",
            deps=["users", "items"],
            kinds={"spark", "delta"},
            freshness_policy=DAILY_FRESHNESS,
            description=(
                "Validated, typed, de-duplicated interaction events (play, complete, rating, thumbs, impressions, clicks).\n\n"
                "Grain: one row per `event_id` per day. Daily partitions on `occurred_at` (UTC); late events land in the "
                "partition of their `occurred_at`. Re-running a partition replaces exactly its rows (Delta predicate overwrite)."
            ),
            **_PARTITIONED,
        ),
        dg.AssetSpec(
            "dead_letter_events",
            deps=["users", "items"],
            kinds={"spark", "delta"},
            description=(
                "Every rejected landing line with its `reason`, a human-readable `detail`, the raw payload, source file and line.\n\n"
                "Grain: one row per rejected line. Daily partitions: the line's `occurred_at` day when it is within the "
                "lateness window, else the file's arrival day. Re-running a partition after a fix (e.g. a catalog update) "
                "re-validates its lines."
            ),
            **_PARTITIONED,
        ),
        dg.AssetSpec(
            "ingestion_audit",
            deps=["users", "items"],
            kinds={"spark", "delta"},
            description=(
                "The books of ingestion, one row per partition day: lines read, valid events, duplicates removed, dead-lettered "
                "(by reason), files read. Invariant: lines_read = valid_events + duplicates_removed + dead_lettered."
            ),
            **_PARTITIONED,
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # One pass always writes all three tables (the books must balance); selecting only
    # some of them still records the others' materializations as runtime events.
    can_subset=True,
)
def raw_events(
    context: dg.AssetExecutionContext,
    config: IngestionConfig,
    landing: LandingZoneResource,
    lakehouse: LakehouseResource,
    spark: SparkResource,
):
    started = time.monotonic()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = round(time.monotonic() - started - sum(phases.values()), 2)

    start, end = partition_days(context)
    store = landing.store()
    rules = config.rules()
    refresh = refresh_manifest(store, lakehouse, rules.max_late_days)
    entries = files_for_days(lakehouse, start, end)
    context.log.info(f"days {start}..{end}: {len(entries)} landing files ({len(refresh.new_files)} newly indexed)")
    local = store.local_paths([e.file_key for e in entries])
    lap("manifest")

    session = spark.get_session()
    lines = read_landing_lines(session, [(local[e.file_key], e.file_key, e.arrival_day) for e in entries])
    known_users, users_source = _dimension_ids(context, spark, lakehouse, store, USERS_PREFIX, parse_users, "user_id")
    known_items, items_source = _dimension_ids(context, spark, lakehouse, store, ITEMS_PREFIX, parse_items, "item_id")
    classified = classify_events(lines, known_users, known_items, rules)
    commit = {"dagster_run_id": context.run.run_id, "partitions": f"{start}..{end}"}
    # One Spark pass: every line's outcome is staged once, then each table is cut from it.
    with spark.stage(outcomes(classified, start, end), partition_by=["outcome"]) as staged:
        lap("spark_validate_dedup")
        books = _complete_audit(audit(staged.frame()).toArrow(), start, end)
        lap("audit")
        outcome = pads.field("outcome")
        raw_version = lakehouse.overwrite_range(
            "raw_events", staged.reader(RAW_EVENTS_SCHEMA, outcome == VALID), start, end, commit_metadata=commit
        )
        dead_version = lakehouse.overwrite_range(
            "dead_letter_events", staged.reader(DEAD_LETTER_SCHEMA, outcome == DEAD), start, end, commit_metadata=commit
        )
        audit_version = lakehouse.overwrite_range("ingestion_audit", books, start, end, commit_metadata=commit)
        lap("delta_commits")

    totals = {c: sum(books.column(c).to_pylist()) for c in ("lines_read", "valid_events", "duplicates_removed", "dead_lettered")}
    reasons: dict[str, int] = {}
    for day_reasons in books.column("dead_letter_reasons").to_pylist():
        for reason, count in day_reasons or []:
            reasons[reason] = reasons.get(reason, 0) + count
    elapsed = time.monotonic() - started
    common = {
        "partition_range": f"{start}..{end}",
        "partitions": (end - start).days + 1,
        "landing_files_read": len(entries),
        "landing_files_newly_indexed": len(refresh.new_files),
        "wall_seconds": round(elapsed, 2),
        "phase_seconds": dg.MetadataValue.json(phases),
        "validated_against": f"users: {users_source}; items: {items_source}",
    }
    context.log.info(f"ingested {totals} in {elapsed:.1f}s; dead letters by reason: {reasons}")
    results = {
        "raw_events": {
            **table_metadata(lakehouse, "raw_events", raw_version),
            **common,
            "dagster/row_count": totals["valid_events"],
            "lines_read": totals["lines_read"],
            "duplicates_removed": totals["duplicates_removed"],
            "dead_lettered": totals["dead_lettered"],
            "events_per_second": round(totals["lines_read"] / elapsed, 1) if elapsed else 0.0,
        },
        "dead_letter_events": {
            **table_metadata(lakehouse, "dead_letter_events", dead_version),
            **common,
            "dagster/row_count": totals["dead_lettered"],
            "dead_letters_by_reason": dg.MetadataValue.json(reasons),
            "summary": dg.MetadataValue.md(_md_table(sorted(reasons.items()), ("reason", "lines")) if reasons else "No dead letters."),
        },
        "ingestion_audit": {
            **table_metadata(lakehouse, "ingestion_audit", audit_version),
            **common,
            "dagster/row_count": books.num_rows,
            **totals,
            "books_balance": totals["lines_read"] == totals["valid_events"] + totals["duplicates_removed"] + totals["dead_lettered"],
        },
    }
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    for name, metadata in results.items():
        if name in selected:
            yield dg.MaterializeResult(asset_key=name, metadata=metadata)
        else:  # written in the same pass though not selected: record it truthfully
            for partition_key in context.partition_keys:
                context.log_event(dg.AssetMaterialization(asset_key=name, partition=partition_key, metadata=metadata))


def _dimension_ids(context, spark: SparkResource, lakehouse: LakehouseResource, store, prefix: str, parse, id_column: str):
    """Known ids of a dimension: its lakehouse table, else (not yet materialized) its newest landing snapshot."""
    if lakehouse.exists(prefix):
        return spark.read_delta(lakehouse, prefix).select(id_column), f"table v{lakehouse.version(prefix)}"
    snapshot = store.latest_dimension(prefix)
    if snapshot is None:
        raise dg.Failure(f"neither a {prefix} table nor a {prefix} snapshot in the landing zone: cannot validate {id_column}s")
    context.log.warning(f"{prefix} table not materialized yet; validating against landing snapshot {snapshot.key}")
    ids = parse(store.read_bytes(snapshot.key)).table.select([id_column])
    return spark.from_arrow(ids), f"landing snapshot {snapshot.key}"


def _complete_audit(books: pa.Table, start: dt.date, end: dt.date) -> pa.Table:
    """One audit row for every day of the range, zeros where no line was read."""
    books = books.select(AUDIT_SCHEMA.names).cast(AUDIT_SCHEMA)
    present = set(books.column("event_date").to_pylist())
    missing = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    missing = [d for d in missing if d not in present]
    zeros = pa.Table.from_pylist(
        [
            {"lines_read": 0, "valid_events": 0, "duplicates_removed": 0, "dead_lettered": 0, "dead_letter_reasons": [], "files_read": 0, "event_date": d}
            for d in missing
        ],
        schema=AUDIT_SCHEMA,
    )
    return pa.concat_tables([books, zeros]).sort_by("event_date")
