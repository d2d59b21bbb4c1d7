"""Backfill into staging, live unchanged meanwhile, validation, cutover, rollback, rejection."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from recsys_assets.automation.backfills import CUTOVERS_TABLE, cutover_history, staged_tables
from recsys_assets.automation.sensors import backfill_cutover_sensor
from recsys_assets.runner import run_job
from recsys_assets.sources.simulator import simulate, write_landing
from resources.feast import FeastResource
from resources.lakehouse import STAGING_TAG, LakehouseResource
from resources.landing import LandingZoneResource
from tests.conftest import SIM_END_DAY, small_sim_config

pytestmark = pytest.mark.slow
START = SIM_END_DAY - dt.timedelta(days=5)
FIX_FROM = SIM_END_DAY - dt.timedelta(days=2)
# "the fix": similarities from pairs seen by a single user too, and shorter lists
FIXED_CONFIG = {"ops": {"item_similarities": {"config": {"min_co_count": 1, "top_k": 20}}}}


@pytest.fixture(scope="module")
def env(tmp_path_factory, spark_resource):
    from recsys_assets.definitions import build_defs

    home = tmp_path_factory.mktemp("backfill")
    lakehouse = LakehouseResource(root_uri=str(home / "lakehouse"))
    landing = LandingZoneResource(root_uri=str(home / "landing"))
    feast = FeastResource(registry_path=str(home / "feast" / "registry.db"), sqlite_path=str(home / "feast" / "online.db"))
    write_landing(simulate(small_sim_config(n_users=150, n_items=60)), landing.store())
    defs = build_defs({"lakehouse": lakehouse, "landing": landing, "spark": spark_resource, "feast": feast})
    instance = dg.DagsterInstance.ephemeral()
    run_job(defs, "daily_job", days=(START, SIM_END_DAY), instance=instance, log_level="WARNING")
    return defs, lakehouse, instance


def similarities(lakehouse: LakehouseResource, start: dt.date, end: dt.date) -> list[dict]:
    t = lakehouse.read_range("item_similarities", start, end, column="feature_date", columns=["item_id", "feature_date", "similar_item_ids"])
    return t.sort_by([("feature_date", "ascending"), ("item_id", "ascending")]).to_pylist()


def sensor_tick(instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return backfill_cutover_sensor.evaluate_tick(context)


def test_backfill_staging_cutover_and_rollback(env):
    defs, lakehouse, instance = env
    before_all = similarities(lakehouse, START, SIM_END_DAY)
    before_version = lakehouse.version("item_similarities")
    cursor = sensor_tick(instance).cursor

    # the backfill runs in two parts; after the first, live is unchanged and nothing is cut over yet
    tags = {STAGING_TAG: "sim-fix"}
    run_job(defs, "features_backfill_job", days=(FIX_FROM, FIX_FROM), run_config=FIXED_CONFIG, tags=tags, instance=instance, log_level="WARNING")
    assert lakehouse.version("item_similarities") == before_version
    assert similarities(lakehouse, START, SIM_END_DAY) == before_all
    assert "item_similarities" in staged_tables(lakehouse, "sim-fix")
    staged = LakehouseResource(root_uri=lakehouse.root_uri, staging="sim-fix")
    assert similarities(staged, FIX_FROM, FIX_FROM) != similarities(lakehouse, FIX_FROM, FIX_FROM)

    run_job(
        defs, "features_backfill_job", days=(FIX_FROM + dt.timedelta(days=1), SIM_END_DAY),
        run_config=FIXED_CONFIG, tags=tags, instance=instance, log_level="WARNING",
    )  # fmt: skip
    staged_rows = similarities(staged, FIX_FROM, SIM_END_DAY)
    assert similarities(lakehouse, START, SIM_END_DAY) == before_all  # still untouched

    # complete: the sensor requests the cutover, which validates and swaps staging into live
    tick = sensor_tick(instance, cursor)
    (request,) = tick.run_requests
    result = run_job(defs, "cutover_backfill_job", run_config=request.run_config, instance=instance, log_level="WARNING")
    assert result.success
    after = similarities(lakehouse, START, SIM_END_DAY)
    assert [r for r in after if r["feature_date"] >= FIX_FROM] == staged_rows  # backfilled days are the staged ones
    assert [r for r in after if r["feature_date"] < FIX_FROM] == [r for r in before_all if r["feature_date"] < FIX_FROM]
    assert all(len(r["similar_item_ids"]) <= 20 for r in after if r["feature_date"] >= FIX_FROM)
    decisions = cutover_history(lakehouse, "sim-fix")
    assert {d["action"] for d in decisions} == {"cutover"}
    assert {d["table_name"] for d in decisions} >= {"item_similarities", "user_features", "item_features"}
    assert not sensor_tick(instance, tick.cursor).run_requests  # never twice

    # roll back: the backfilled partitions get their previous rows again
    rolled = run_job(
        defs, "rollback_backfill_job", run_config={"ops": {"roll_back_backfill": {"config": {"backfill_id": "sim-fix"}}}},
        instance=instance, log_level="WARNING",
    )  # fmt: skip
    assert rolled.success
    assert similarities(lakehouse, START, SIM_END_DAY) == before_all
    assert cutover_history(lakehouse, "sim-fix")[-1]["action"] == "rollback"


def test_failed_validation_leaves_live_untouched(env):
    defs, lakehouse, instance = env
    before = lakehouse.read_range("user_features", SIM_END_DAY, SIM_END_DAY, column="feature_date")
    version = lakehouse.version("user_features")
    # a "fix" that breaks the table: negative counts and a duplicated user
    broken = before.set_column(before.schema.get_field_index("events_30d"), "events_30d", pc.multiply(before.column("events_30d"), -1))
    staged = LakehouseResource(root_uri=lakehouse.root_uri, staging="bad-fix")
    staged.overwrite_range("user_features", pa.concat_tables([broken, broken.slice(0, 1)]), SIM_END_DAY, SIM_END_DAY, column="feature_date")

    result = run_job(
        defs, "cutover_backfill_job", run_config={"ops": {"cut_over_backfill": {"config": {"backfill_id": "bad-fix"}}}},
        instance=instance, raise_on_error=False, log_level="WARNING",
    )  # fmt: skip
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rejected, live untouched" in failure.event_specific_data.error.message
    assert "Great Expectations suite user_features failed" in failure.event_specific_data.error.message
    assert lakehouse.version("user_features") == version
    assert lakehouse.read_range("user_features", SIM_END_DAY, SIM_END_DAY, column="feature_date").equals(before)
    rejected = [r for r in lakehouse.read(CUTOVERS_TABLE).to_pylist() if r["backfill_id"] == "bad-fix"]
    assert [r["action"] for r in rejected] == ["rejected"]


def test_serving_assets_refuse_to_run_in_staging(env):
    defs, lakehouse, instance = env
    result = run_job(
        defs, "features_job", days=(SIM_END_DAY, SIM_END_DAY), tags={STAGING_TAG: "oops"},
        instance=instance, raise_on_error=False, log_level="WARNING",
    )  # fmt: skip
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "online_features"
    assert "cannot run in staging backfill" in failure.event_specific_data.error.message
