"""Sensors and schedules, evaluated with Dagster's test contexts against a real instance."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading

import dagster as dg
import pytest

from recsys_assets.automation.schedules import daily_pipeline_schedule, retrain_schedule
from recsys_assets.automation.sensors import (
    RUN_FAILURES_TABLE,
    backfill_cutover_sensor,
    downstream_features_sensor,
    landing_zone_sensor,
    run_failure_alert_sensor,
)
from resources.alerts import AlertResource
from resources.lakehouse import STAGING_TAG, LakehouseResource
from resources.landing import LandingZoneResource


def event_line(event_id: str, occurred: str, ingested: str) -> str:
    return json.dumps(
        {"event_id": event_id, "user_id": 1, "item_id": 2, "event_type": "play", "occurred_at": occurred, "ingested_at": ingested, "value": 60.0}
    )


@pytest.fixture
def landing(tmp_path):
    return LandingZoneResource(root_uri=str(tmp_path / "landing"))


def tick(sensor, instance, cursor, **resources):
    from recsys_assets.definitions import defs  # partitioned run requests resolve against the Definitions

    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs) as context:
        return sensor.evaluate_tick(context)


def test_landing_sensor_new_files_late_files_and_reticks(landing):
    instance = dg.DagsterInstance.ephemeral()
    store = landing.store()
    store.write_bytes("events/dt=2024-03-01/hour=05/old.jsonl", (event_line("o", "2024-03-01T05:00:00Z", "2024-03-01T05:00:01Z") + "\n").encode())

    first = tick(landing_zone_sensor, instance, None, landing=landing)
    assert not first.run_requests and first.cursor  # initialises on what is already there

    # new files: two days of events, one batch arriving just after midnight
    store.write_bytes(
        "events/dt=2024-03-09/hour=23/a.jsonl",
        (event_line("a", "2024-03-09T23:10:00Z", "2024-03-09T23:10:01Z") + "\n").encode(),
    )
    store.write_bytes(
        "events/dt=2024-03-10/hour=00/b.jsonl",
        "\n".join([event_line("b", "2024-03-09T23:59:00Z", "2024-03-10T00:00:30Z"), event_line("c", "2024-03-10T00:01:00Z", "2024-03-10T00:01:01Z")]).encode(),
    )
    second = tick(landing_zone_sensor, instance, first.cursor, landing=landing)
    assert sorted(r.partition_key for r in second.run_requests) == ["2024-03-09", "2024-03-10"]
    assert all(r.tags["recsys/trigger"] == "landing_zone_sensor" for r in second.run_requests)
    assert len({r.run_key for r in second.run_requests}) == 2

    # a late file (arrives on the 12th, holds events of the 2nd): only the old partition
    store.write_bytes(
        "events/dt=2024-03-12/hour=08/late.jsonl",
        (event_line("late", "2024-03-02T20:00:00Z", "2024-03-12T08:00:00Z") + "\n").encode(),
    )
    third = tick(landing_zone_sensor, instance, second.cursor, landing=landing)
    assert [r.partition_key for r in third.run_requests] == ["2024-03-02"]

    # a re-tick requests nothing
    fourth = tick(landing_zone_sensor, instance, third.cursor, landing=landing)
    assert not fourth.run_requests and fourth.skip_message == "no new landing files"


def test_downstream_features_sensor_recomputes_the_windows_of_a_late_day():
    instance = dg.DagsterInstance.ephemeral()

    @dg.op
    def noop():
        return None

    @dg.job(tags={"recsys/trigger": "landing_zone_sensor", "dagster/partition": "2024-03-02"})
    def fake_ingestion():
        noop()

    result = fake_ingestion.execute_in_process(instance=instance)
    success = next(e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS")
    context = dg.build_run_status_sensor_context(
        sensor_name="downstream_features_sensor", dagster_event=success, dagster_instance=instance, dagster_run=result.dagster_run
    )
    request = downstream_features_sensor(context)
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-02"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-31"  # D + 29 days of rolling windows


def _tagged_run(instance, backfill_id: str, fail: bool = False):
    @dg.op
    def step():
        if fail:
            raise RuntimeError("boom")

    @dg.job(name=f"backfill_part_{'bad' if fail else 'ok'}", tags={STAGING_TAG: backfill_id})
    def part():
        step()

    return part.execute_in_process(instance=instance, raise_on_error=False)


def test_backfill_cutover_sensor_waits_for_success_and_fires_once():
    instance = dg.DagsterInstance.ephemeral()
    first = tick(backfill_cutover_sensor, instance, None)
    assert not first.run_requests

    _tagged_run(instance, "fix-1")
    _tagged_run(instance, "fix-1")
    _tagged_run(instance, "broken-1")
    _tagged_run(instance, "broken-1", fail=True)
    result = tick(backfill_cutover_sensor, instance, first.cursor)
    assert [r.run_config["ops"]["cut_over_backfill"]["config"]["backfill_id"] for r in result.run_requests] == ["fix-1"]
    again = tick(backfill_cutover_sensor, instance, result.cursor)
    assert not again.run_requests  # never twice, and the failed backfill is never cut over


def test_daily_schedule_requests_the_previous_day():
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2024, 3, 11, 1, 0, tzinfo=dt.timezone.utc))
    from recsys_assets.definitions import defs

    schedule = defs.resolve_schedule_def(daily_pipeline_schedule.name)
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2024-03-10"]
    assert retrain_schedule.cron_schedule == "0 4 * * *"


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_run_failure_sensor_records_and_alerts(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        instance = dg.DagsterInstance.ephemeral()
        result = _tagged_run(instance, "any", fail=True)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        lakehouse = LakehouseResource(root_uri=str(tmp_path / "lake"))
        alerts = AlertResource(webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"alerts": alerts, "lakehouse": lakehouse},
        ).for_run_failure()
        run_failure_alert_sensor(context)
        rows = lakehouse.read(RUN_FAILURES_TABLE).to_pylist()
        assert [(r["run_id"], r["job_name"], r["alerted"]) for r in rows] == [(result.run_id, "backfill_part_bad", True)]
        assert _Hook.received and result.run_id in _Hook.received[-1]["text"]
    finally:
        server.shutdown()


def test_alerts_are_a_noop_without_a_webhook():
    assert AlertResource(webhook_url=None).send("hello") is False
