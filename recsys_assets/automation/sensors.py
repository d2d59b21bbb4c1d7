"""Sensors: new landing files, late data, finished backfills, model cutover, failures."""

import datetime as dt
import json

import dagster as dg
import pyarrow as pa

from recsys_assets.features.assets import WINDOW_DAYS
from recsys_assets.ingestion.events import ValidationRules
from recsys_assets.jobs import cutover_backfill_job, features_job, ingestion_job, promote_recommendations_job
from recsys_assets.partitions import daily_partitions
from recsys_assets.recommendations import live
from recsys_assets.runner import RANGE_END_TAG, RANGE_START_TAG
from recsys_assets.sources.landing import EVENTS_PREFIX, LandingFile, scan_event_days
from resources.alerts import AlertResource
from resources.lakehouse import STAGING_TAG, LakehouseResource
from resources.landing import LandingZoneResource

TRIGGER_TAG = "recsys/trigger"
LANDING_TRIGGER = "landing_zone_sensor"


# ------------------------------------------------------------------ landing zone
def _cursor(raw: str | None) -> dict | None:
    return json.loads(raw) if raw else None


def new_files(files: list[LandingFile], cursor: dict) -> list[LandingFile]:
    """Files after the cursor's watermark (modification time, then key for ties)."""
    mark = dt.datetime.fromisoformat(cursor["watermark"])
    seen = set(cursor.get("keys_at_watermark", []))
    return [f for f in files if f.modified > mark or (f.modified == mark and f.key not in seen)]


def advance(files: list[LandingFile], cursor: dict | None) -> dict:
    """The cursor after ``files`` (all files seen so far are at or below the new watermark)."""
    if not files:
        return cursor or {"watermark": dt.datetime.min.replace(tzinfo=dt.timezone.utc).isoformat(), "keys_at_watermark": []}
    mark = max(f.modified for f in files)
    old = cursor or {}
    keys = {f.key for f in files if f.modified == mark}
    if old.get("watermark") and dt.datetime.fromisoformat(old["watermark"]) == mark:
        keys |= set(old.get("keys_at_watermark", []))
    return {"watermark": mark.isoformat(), "keys_at_watermark": sorted(keys)}


def partition_keys_between(first: str | None, last: str | None, days: set[dt.date]) -> tuple[list[str], list[str]]:
    """(days that are partitions, days outside the partition range)."""
    keys, outside = [], []
    for day in sorted(days):
        key = day.isoformat()
        (keys if first and last and first <= key <= last else outside).append(key)
    return keys, outside


@dg.sensor(
    job=ingestion_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the landing zone (folder or S3 prefix) for new event files, works out which occurred_at days "
        "they touch and requests an ingestion run for exactly those raw_events partitions (late files re-run "
        "old days). Cursor: the newest file modification time seen. On its first tick it only records where "
        "the landing zone stands; earlier files are for the schedule or a backfill."
    ),
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource):
    store = landing.store()
    files = store.list_files(EVENTS_PREFIX)
    cursor = _cursor(context.cursor)
    if cursor is None:
        context.update_cursor(json.dumps(advance(files, None)))
        return dg.SkipReason(f"initialised at {len(files)} existing landing files; new files from now on trigger ingestion")
    fresh = new_files(files, cursor)
    if not fresh:
        return dg.SkipReason("no new landing files")
    max_late = ValidationRules().max_late_days
    days: set[dt.date] = set()
    for f in fresh:
        days |= scan_event_days(store.read_bytes(f.key), f.arrival_day, max_late)
    keys, outside = partition_keys_between(daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key(), days)
    new_cursor = advance(fresh, cursor)
    if outside:
        context.log.info(f"days outside the partitions (today, or before the first partition): {outside}")
    requests = [
        dg.RunRequest(
            run_key=f"landing:{key}:{new_cursor['watermark']}",
            partition_key=key,
            tags={TRIGGER_TAG: LANDING_TRIGGER, "recsys/new_files": str(len(fresh))},
        )
        for key in keys
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingestion_job],
    request_job=features_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After an ingestion run the landing zone sensor started (new or late data for day D), requests one "
        f"features run over D .. D+{WINDOW_DAYS - 1} (capped at the last partition): every rolling window that "
        "includes D is recomputed, then the online store."
    ),
)
def downstream_features_sensor(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    if run.tags.get(TRIGGER_TAG) != LANDING_TRIGGER or not run.tags.get("dagster/partition"):
        return dg.SkipReason("not an ingestion run of the landing zone sensor")
    day = dt.date.fromisoformat(run.tags["dagster/partition"])
    last = dt.date.fromisoformat(daily_partitions.get_last_partition_key())
    end = min(day + dt.timedelta(days=WINDOW_DAYS - 1), last)
    return dg.RunRequest(
        run_key=f"features-after:{run.run_id}",
        tags={RANGE_START_TAG: day.isoformat(), RANGE_END_TAG: end.isoformat(), TRIGGER_TAG: "downstream_features_sensor"},
    )


# ------------------------------------------------------------- backfill cutover
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def backfill_state(instance: dg.DagsterInstance, backfill_id: str) -> str:
    """``running``, ``succeeded`` or ``failed`` for the runs (and Dagster backfills) tagged with the id."""
    from dagster._core.execution.backfill import BulkActionStatus

    runs = instance.get_runs(filters=dg.RunsFilter(tags={STAGING_TAG: backfill_id}))
    pending_backfills = [
        b for b in instance.get_backfills(status=BulkActionStatus.REQUESTED) if (b.tags or {}).get(STAGING_TAG) == backfill_id
    ]
    if pending_backfills or any(r.status not in FINISHED for r in runs):
        return "running"
    if not runs:
        return "running"
    return "succeeded" if all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs) else "failed"


@dg.sensor(
    job=cutover_backfill_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches backfills into staging (runs tagged recsys/staging=<id>). When all of a backfill's runs have "
        "succeeded it launches cutover_backfill_job, which validates the staged tables and swaps them into live "
        "only if they pass. A backfill with a failed run is never cut over."
    ),
)
def backfill_cutover_sensor(context: dg.SensorEvaluationContext):
    handled = set(json.loads(context.cursor or "[]"))
    tags = context.instance.get_run_tags(tag_keys=[STAGING_TAG])
    ids = sorted(set().union(*(values for _, values in tags)) if tags else set())
    requests, notes = [], []
    for backfill_id in ids:
        if backfill_id in handled:
            continue
        state = backfill_state(context.instance, backfill_id)
        if state == "running":
            continue
        handled.add(backfill_id)
        if state == "failed":
            notes.append(f"backfill {backfill_id} has failed runs: not cut over, live untouched")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"cutover:{backfill_id}",
                run_config={"ops": {"cut_over_backfill": {"config": {"backfill_id": backfill_id}}}},
                tags={"recsys/backfill": backfill_id},
            )
        )
    for note in notes:
        context.log.warning(note)
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(notes) or "no finished backfill to cut over", cursor=json.dumps(sorted(handled)))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(handled)))


# ---------------------------------------------------------------- model cutover
def versions_to_promote(lakehouse: LakehouseResource) -> str | None:
    """The newest evaluated version that passed its gate against the current live version."""
    if not lakehouse.exists("recommendation_gates"):
        return None
    current = live.live_version(lakehouse)
    promoted = {d["model_version"] for d in live.decisions(lakehouse)}
    gates = lakehouse.read("recommendation_gates").sort_by([("evaluated_at", "descending")]).to_pylist()
    for gate in gates:
        if gate["model_version"] in promoted or gate["model_version"] == current:
            return None  # the newest evaluation is of a version already handled
        if gate["gate_passed"] and gate["live_version"] == current:
            return gate["model_version"]
        return None  # the newest version failed (or was judged against an older live): nothing to do
    return None


@dg.sensor(
    job=promote_recommendations_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Promotes a new model version to live (online store and live pointer) once recommendation_eval's gate "
        "passed for it against the current live version; the previous version stays for rollback."
    ),
)
def model_cutover_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    version = versions_to_promote(lakehouse)
    if version is None:
        return dg.SkipReason("no new model version passed the evaluation gate")
    return dg.RunRequest(
        run_key=f"promote:{version}",
        run_config={"ops": {"live_recommendations": {"config": {"action": "promote", "model_version": version}}}},
        tags={"recsys/model_version": version},
    )


# --------------------------------------------------------------------- failures
RUN_FAILURES_TABLE = "run_failures"
RUN_FAILURES_SCHEMA = pa.schema(
    [
        ("failed_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("job_name", pa.string()),
        ("partition", pa.string()),
        ("message", pa.string()),
        ("alerted", pa.bool_()),
    ]
)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run in the run_failures table and sends an alert (webhook if configured).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertResource, lakehouse: LakehouseResource):
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags[RANGE_START_TAG]}..{run.tags[RANGE_END_TAG]}" if RANGE_START_TAG in run.tags else ""
    )
    text = f"recsys: run {run.run_id} of {run.job_name} failed{f' ({partition})' if partition else ''}: {message}"
    alerted = alerts.send(text, run_id=run.run_id, job=run.job_name, partition=partition)
    row = {
        "failed_at": dt.datetime.now(dt.timezone.utc),
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": partition,
        "message": message[:4000],
        "alerted": alerted,
    }
    lakehouse.append(RUN_FAILURES_TABLE, pa.Table.from_pylist([row], schema=RUN_FAILURES_SCHEMA))
    context.log.info(text)


ALL_SENSORS = [landing_zone_sensor, downstream_features_sensor, backfill_cutover_sensor, model_cutover_sensor, run_failure_alert_sensor]
