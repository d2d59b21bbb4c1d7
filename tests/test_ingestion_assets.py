"""raw_events / dead_letter_events / ingestion_audit through Dagster on a small simulated set."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyarrow.compute as pc
import pytest

from recsys_assets.runner import run_job
from recsys_assets.sources.simulator import simulate, write_landing
from tests.conftest import SIM_END_DAY, small_sim_config

START = SIM_END_DAY - dt.timedelta(days=5)


@pytest.fixture
def world(landing):
    w = simulate(small_sim_config())
    write_landing(w, landing.store())
    return w


@pytest.fixture
def defs(world, lakehouse, landing, make_defs):
    return make_defs(lakehouse, landing)


def sorted_rows(table, key=("event_date", "event_id", "source_file", "source_line")):
    return table.sort_by([(k, "ascending") for k in key if k in table.column_names]).to_pylist()


def test_books_balance_against_the_simulated_truth(defs, lakehouse, world):
    run_job(defs, "ingestion_job", days=(START, SIM_END_DAY))
    raw = lakehouse.read("raw_events")
    dead = lakehouse.read("dead_letter_events")
    audit = lakehouse.read("ingestion_audit")

    # every true event exactly once, in the partition of its occurred_at
    assert raw.num_rows == len(world.events)
    assert sorted(raw.column("event_id").to_pylist()) == sorted(world.events["event_id"])
    assert pc.all(pc.equal(raw.column("event_date"), pc.cast(raw.column("occurred_at"), "date32"))).as_py()
    # every bad line dead-lettered with the reason the simulator meant
    assert Counter(dead.column("reason").to_pylist()) == Counter(world.summary["bad_events"])
    # per partition and in total: read = valid + duplicates + dead
    for row in audit.to_pylist():
        assert row["lines_read"] == row["valid_events"] + row["duplicates_removed"] + row["dead_lettered"], row
        assert row["valid_events"] == raw.filter(pc.equal(raw.column("event_date"), row["event_date"])).num_rows
        assert row["dead_lettered"] == dead.filter(pc.equal(dead.column("event_date"), row["event_date"])).num_rows
    totals = {c: sum(audit.column(c).to_pylist()) for c in ("lines_read", "valid_events", "duplicates_removed", "dead_lettered")}
    assert totals["lines_read"] == world.summary["lines_written"]
    assert totals["duplicates_removed"] == world.summary["redelivered_events"]
    assert audit.num_rows == 6


def test_rerun_is_idempotent_and_range_equals_days(world, lakehouse, landing, make_defs, tmp_path):
    from resources.lakehouse import LakehouseResource

    defs = make_defs(lakehouse, landing)
    run_job(defs, "ingestion_job", days=(START, SIM_END_DAY))
    first = sorted_rows(lakehouse.read("raw_events"))
    first_dead = sorted_rows(lakehouse.read("dead_letter_events"))
    version = lakehouse.version("raw_events")
    run_job(defs, "ingestion_job", days=(START + dt.timedelta(days=2), START + dt.timedelta(days=2)))
    assert lakehouse.version("raw_events") == version + 1
    assert sorted_rows(lakehouse.read("raw_events")) == first
    assert sorted_rows(lakehouse.read("dead_letter_events")) == first_dead

    # the same days materialized one partition per run give the same table
    per_day = LakehouseResource(root_uri=str(tmp_path / "per_day"))
    defs_days = make_defs(per_day, landing)
    for i in range(6):
        day = START + dt.timedelta(days=i)
        run_job(defs_days, "ingestion_job", days=(day, day))
    assert sorted_rows(per_day.read("raw_events")) == first
    assert sorted_rows(per_day.read("dead_letter_events")) == first_dead


def test_redelivered_and_late_events_counted_once_in_their_day(defs, lakehouse, world, landing):
    events = world.events
    late = events[events["is_late"]].iloc[0]
    arrival_lines = [(k, line) for k, lines in world.batches.items() for line in lines if late["event_id"] in line]
    assert len(arrival_lines) >= 1 and all(f"dt={late['occurred_at'][:10]}" not in k for k, _ in arrival_lines)

    # an exact re-delivery of the late event, arriving yet another day later
    store = landing.store()
    redelivery_key = f"events/dt={SIM_END_DAY.isoformat()}/hour=23/replay-1.jsonl"
    store.write_bytes(redelivery_key, (arrival_lines[0][1] + "\n").encode())

    run_job(defs, "ingestion_job", days=(START, SIM_END_DAY))
    raw = lakehouse.read("raw_events")
    rows = raw.filter(pc.equal(raw.column("event_id"), late["event_id"])).to_pylist()
    assert len(rows) == 1
    assert rows[0]["event_date"] == dt.date.fromisoformat(late["occurred_at"][:10])
    assert rows[0]["source_file"] != redelivery_key  # the first delivery wins


def test_late_file_rematerializes_only_its_day(defs, lakehouse, landing, world):
    run_job(defs, "ingestion_job", days=(START, SIM_END_DAY))
    before = lakehouse.read("raw_events").num_rows
    template = next(line for lines in world.batches.values() for line in lines if '"event_type": "play"' in line)
    import json

    late = json.loads(template)
    late.update(event_id="late-arrival-1", occurred_at=f"{START.isoformat()}T08:00:00Z", ingested_at=f"{SIM_END_DAY.isoformat()}T22:00:00Z")
    landing.store().write_bytes(f"events/dt={SIM_END_DAY.isoformat()}/hour=22/late-1.jsonl", (json.dumps(late) + "\n").encode())

    run_job(defs, "ingestion_job", days=(START, START))
    raw = lakehouse.read("raw_events")
    assert raw.num_rows == before + 1
    row = raw.filter(pc.equal(raw.column("event_id"), "late-arrival-1")).to_pylist()[0]
    assert row["event_date"] == START


def test_dimensions_are_loaded(defs, lakehouse, world):
    run_job(defs, "ingestion_job", days=(SIM_END_DAY, SIM_END_DAY))
    users = lakehouse.read("users")
    items = lakehouse.read("items")
    assert users.num_rows == len(world.users) and items.num_rows == len(world.items)
    assert set(users.column("region").to_pylist()) <= {"NA", "LATAM", "EMEA", "APAC"}
    assert all(items.column("primary_genre").to_pylist())


def test_materialization_metadata(defs, lakehouse):
    result = run_job(defs, "ingestion_job", days=(START, SIM_END_DAY))
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    raw = mats["raw_events"]
    assert raw["dagster/row_count"].value == lakehouse.read("raw_events").num_rows
    assert raw["partition_range"].value == f"{START}..{SIM_END_DAY}"
    assert raw["delta_version"].value == lakehouse.version("raw_events")
    assert set(mats["dead_letter_events"]["dead_letters_by_reason"].value) == set(
        lakehouse.read("dead_letter_events").column("reason").to_pylist()
    )
    assert mats["ingestion_audit"]["books_balance"].value is True
