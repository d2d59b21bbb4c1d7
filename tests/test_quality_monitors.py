"""Data-quality monitors (feature drift, context null rates, dead-letter rate) as asset checks.

Fast: small pyarrow tables in the tables' schemas, no Spark. The Dagster tests write real
Delta tables in a temp lakehouse and run the checks alone in process, with the partition
as a run tag. (No ``from __future__ import annotations``: Dagster resolves resource
annotations at definition time.)
"""

import datetime as dt
import json
import math
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recsys_assets.features.transforms import ITEM_FEATURES_SCHEMA, USER_FEATURES_SCHEMA
from recsys_assets.ingestion.events import AUDIT_SCHEMA, RAW_EVENTS_SCHEMA
from recsys_assets.quality import monitors as M
from resources.lakehouse import LakehouseResource

DAILY = dg.DailyPartitionsDefinition(start_date="2024-03-01", timezone="UTC")
FIRST = dt.date(2024, 3, 1)  # first day of history
BASELINE = [FIRST + dt.timedelta(days=i) for i in range(7)]  # 03-01 .. 03-07
NORMAL_DAY = dt.date(2024, 3, 8)  # same distribution as the baseline
SHIFTED_DAY = dt.date(2024, 3, 9)  # shifted distribution
N_ENTITIES = 200  # feature rows per day (KS noise at 200 vs 1400 rows is ~0.1)
WARN = dg.AssetCheckSeverity.WARN


def _ts(day: dt.date, hour: int = 23) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def md(check: dg.AssetCheckResult | dg.AssetCheckEvaluation, key: str) -> Any:
    """A metadata entry's plain value."""
    return check.metadata[key].value


# --------------------------------------------------------------- table builders
def _seed(day: dt.date) -> int:
    return day.toordinal()


def user_features_rows(day: dt.date, shift: float = 0.0, n: int = N_ENTITIES) -> list[dict[str, Any]]:
    """Features of ``n`` users; ``shift`` > 0 makes users far more active (and recent)."""
    rng = np.random.default_rng(_seed(day))
    events = rng.poisson(20 * (1 + shift), n)
    rows = []
    for i in range(n):
        e = int(events[i])
        rows.append(
            {
                "user_id": i,
                "feature_timestamp": _ts(day),
                "events_30d": e,
                "positives_30d": int(rng.binomial(e, 0.5)),
                "mean_rating_30d": None if i % 10 == 0 else float(np.clip(rng.normal(3.5 + shift, 0.8), 1, 5)),
                "distinct_items_30d": max(1, e // 2),
                "days_since_last_activity": int(rng.integers(0, 30 if not shift else 3)),
                "genre_affinity": [],
                "feature_date": day,
            }
        )
    return rows


def item_features_rows(day: dt.date, shift: float = 0.0, n: int = N_ENTITIES) -> list[dict[str, Any]]:
    rng = np.random.default_rng(_seed(day) + 1)
    views = rng.poisson(50 * (1 + shift), n)
    return [
        {
            "item_id": 1000 + i,
            "feature_timestamp": _ts(day),
            "views_7d": int(views[i]),
            "ctr_7d": None if i % 7 == 0 else float(rng.beta(2, 8)),
            "item_mean_rating_30d": float(np.clip(rng.normal(3.5, 0.7), 1, 5)),
            "trend_velocity": float(rng.lognormal(shift, 0.3)),
            "popularity_30d": float(math.log1p(views[i] * 4)),
            "genre_vector": [],
            "feature_date": day,
        }
        for i in range(n)
    ]


FEATURES = {"user_features": (USER_FEATURES_SCHEMA, user_features_rows), "item_features": (ITEM_FEATURES_SCHEMA, item_features_rows)}


def write_features(lakehouse: LakehouseResource, asset: str, days: list[dt.date], shifted: set[dt.date] = frozenset()) -> None:
    schema, make = FEATURES[asset]
    rows = [r for d in days for r in make(d, shift=1.5 if d in shifted else 0.0)]
    lakehouse.overwrite_range(asset, pa.Table.from_pylist(rows, schema=schema), min(days), max(days), column="feature_date")


def raw_events_rows(day: dt.date, n: int = 40, missing_device: int = 0) -> list[dict[str, Any]]:
    """``n`` events cycling through the event types; the first ``missing_device`` have no device."""
    types = ("play", "complete", "rating", "thumbs_up", "thumbs_down", "impression", "click")
    rows = []
    for i in range(n):
        kind = types[i % len(types)]
        rows.append(
            {
                "event_id": f"{day:%Y%m%d}-{i}",
                "user_id": i,
                "item_id": 1000 + i,
                "event_type": kind,
                "occurred_at": _ts(day, i % 24),
                "ingested_at": _ts(day),
                "value": {"play": 600.0, "complete": 5400.0, "rating": 4.0}.get(kind),
                "device": None if i < missing_device else "tv",
                "session_id": f"s{i // 5}",
                "surface": "home",
                "position": i % 10,
                "source_file": f"landing/dt={day}/events.jsonl",
                "source_line": i,
                "event_date": day,
            }
        )
    return rows


def audit_row(day: dt.date, lines: int, dead: int, reasons: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "lines_read": lines,
        "valid_events": lines - dead,
        "duplicates_removed": 0,
        "dead_lettered": dead,
        "dead_letter_reasons": list((reasons or {}).items()),
        "files_read": 1,
        "event_date": day,
    }


# ------------------------------------------------------------ pure: ks_drift
def test_ks_drift_identical_and_shifted_distributions() -> None:
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.poisson(5, 2000)})
    same = pd.DataFrame({"x": rng.normal(0, 1, 500), "y": rng.poisson(5, 500)})
    shifted = pd.DataFrame({"x": rng.normal(1.5, 1, 500), "y": rng.poisson(5, 500) + 50})

    identical = M.ks_drift(base, base, ["x", "y"], min_rows=30)
    assert [r["statistic"] for r in identical] == [0.0, 0.0] and all(r["p_value"] == pytest.approx(1.0) for r in identical)

    similar = {r["column"]: r for r in M.ks_drift(same, base, ["x", "y"], min_rows=30)}
    assert similar["x"]["statistic"] < 0.1 and similar["y"]["statistic"] < 0.1
    assert similar["x"]["n_current"] == 500 and similar["x"]["n_baseline"] == 2000

    drifted = {r["column"]: r for r in M.ks_drift(shifted, base, ["x", "y"], min_rows=30)}
    assert drifted["x"]["statistic"] > 0.4 and drifted["y"]["statistic"] == 1.0  # disjoint supports
    assert drifted["x"]["p_value"] < 1e-6
    assert drifted["y"]["mean_current"] == pytest.approx(shifted["y"].mean())
    assert drifted["y"]["mean_baseline"] == pytest.approx(base["y"].mean())
    assert all(r["skipped"] is None for r in drifted.values())


def test_ks_drift_drops_nulls_and_skips_small_or_missing_columns() -> None:
    current = pd.DataFrame({"x": [1.0, 2.0, None, 3.0, float("nan")] * 10, "few": [1.0] * 10 + [None] * 40})
    baseline = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 20, "few": [1.0] * 60})
    rows = {r["column"]: r for r in M.ks_drift(current, baseline, ["x", "few", "absent"], min_rows=30)}
    assert rows["x"]["n_current"] == 30 and rows["x"]["statistic"] == 0.0 and rows["x"]["mean_current"] == 2.0
    assert rows["few"]["statistic"] is None and rows["few"]["n_current"] == 10
    assert "fewer than 30" in rows["few"]["skipped"] and "current 10, baseline 60" in rows["few"]["skipped"]
    assert rows["absent"]["statistic"] is None and "missing" in rows["absent"]["skipped"]
    assert list(rows) == ["x", "few", "absent"]  # in the order asked
    json.dumps(list(rows.values()), allow_nan=False)  # plain JSON


# ----------------------------------------------------------- pure: null_rates
def test_null_rates_per_day_and_column() -> None:
    day2 = FIRST + dt.timedelta(days=1)
    rows = raw_events_rows(FIRST, n=14, missing_device=7) + raw_events_rows(day2, n=10)
    rows[0]["value"] = None  # a play without watch seconds: counts
    rows[5]["value"] = None  # an impression: has no value anyway, does not count
    rows[2]["value"] = float("nan")  # a rating with NaN: counts as null
    rows[3]["position"] = None
    rows[14]["session_id"] = None
    rates = M.null_rates(pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA))
    assert rates.columns.tolist() == ["event_date", "rows", "value_rows", *M.CONTEXT_COLUMNS]
    assert rates["event_date"].tolist() == [FIRST, day2]
    first, second = rates.to_dict("records")
    assert first["rows"] == 14 and first["value_rows"] == 6  # 2 each of play, complete, rating
    assert first["device"] == 0.5 and first["surface"] == 0.0 and first["session_id"] == 0.0
    assert first["position"] == pytest.approx(1 / 14)
    assert first["value"] == pytest.approx(2 / 6)
    assert second["rows"] == 10 and second["value_rows"] == 6 and second["value"] == 0.0
    assert second["session_id"] == pytest.approx(0.1) and second["device"] == 0.0


def test_null_rates_value_without_value_events_is_nan_and_empty_input() -> None:
    rows = [r for r in raw_events_rows(FIRST, n=14) if r["event_type"] in ("impression", "click")]
    rates = M.null_rates(pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA))
    assert rates["value_rows"].tolist() == [0] and math.isnan(rates["value"].iloc[0])
    empty = M.null_rates(RAW_EVENTS_SCHEMA.empty_table())
    assert empty.empty and empty.columns.tolist() == ["event_date", "rows", "value_rows", *M.CONTEXT_COLUMNS]


# ---------------------------------------------------- pure: dead_letter_rates
def test_dead_letter_rates() -> None:
    day2, day3 = FIRST + dt.timedelta(days=1), FIRST + dt.timedelta(days=2)
    audit = pa.Table.from_pylist(
        [audit_row(day2, 200, 20, {"null_id": 15, "unknown_item": 5}), audit_row(FIRST, 100, 1, {"null_id": 1}), audit_row(day3, 0, 0)],
        schema=AUDIT_SCHEMA,
    )
    rates = M.dead_letter_rates(audit)
    assert rates["event_date"].tolist() == [FIRST, day2, day3]
    assert rates["dead_letter_rate"].iloc[:2].tolist() == [0.01, 0.1] and math.isnan(rates["dead_letter_rate"].iloc[2])
    assert rates["dead_letter_reasons"].tolist() == [{"null_id": 1}, {"null_id": 15, "unknown_item": 5}, {}]
    assert rates["lines_read"].tolist() == [100, 200, 0] and rates["dead_lettered"].tolist() == [1, 20, 0]
    assert M.dead_letter_rates(AUDIT_SCHEMA.empty_table()).empty


# ----------------------------------------------------------------- Dagster
READS: list[tuple[Any, ...]] = []


class SpyLakehouse(LakehouseResource):
    """The lakehouse, recording the day ranges and whole-table reads the checks make."""

    def read(self, name: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
        READS.append(("read", name, filters))
        return super().read(name, columns=columns, filters=filters)

    def read_range(self, name: str, start: dt.date, end: dt.date, column: str = "event_date", columns: list[str] | None = None) -> pa.Table:
        READS.append(("read_range", name, start, end, column))
        return super().read_range(name, start, end, column=column, columns=columns)


def range_reads() -> list[tuple[Any, ...]]:
    return [r for r in READS if r[0] == "read_range"]


def whole_table_reads() -> list[tuple[Any, ...]]:
    return [r for r in READS if r[0] == "read" and not r[2]]


def run_check(
    check: dg.AssetChecksDefinition,
    lakehouse: LakehouseResource,
    day: dt.date | None = None,
    end: dt.date | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[dg.ExecuteInProcessResult, dg.AssetCheckEvaluation]:
    """Run ``check`` alone (its asset as a stub) for the partition ``day`` or the days ``day``..``end``.

    (``materialize(partition_key=...)`` refuses a checks-only selection; the run tags work.)
    """
    (spec,) = check.check_specs
    if end is None:
        tags = {"dagster/partition": day.isoformat()} if day else {}
    else:
        tags = {"dagster/asset_partition_range_start": day.isoformat(), "dagster/asset_partition_range_end": end.isoformat()}
    run_config = {"ops": {check.node_def.name: {"config": config}}} if config else None
    READS.clear()
    result = dg.materialize(
        [dg.AssetSpec(spec.asset_key, partitions_def=spec.partitions_def), check],
        selection=dg.AssetSelection.checks(check),
        tags=tags,
        resources={"lakehouse": lakehouse},
        run_config=run_config,
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == spec.name and evaluation.asset_key == spec.asset_key
    return result, evaluation


@pytest.fixture
def spy(tmp_path) -> SpyLakehouse:
    return SpyLakehouse(root_uri=str(tmp_path / "lakehouse"))


@pytest.mark.parametrize("asset", ["user_features", "item_features"])
def test_feature_drift_passes_on_normal_days_and_warns_on_a_shifted_day(spy: SpyLakehouse, asset: str) -> None:
    write_features(spy, asset, [*BASELINE, NORMAL_DAY, SHIFTED_DAY], shifted={SHIFTED_DAY})
    check = M.feature_drift_check(asset, DAILY)

    result, good = run_check(check, spy, NORMAL_DAY)
    assert result.success and good.passed, md(good, "summary")
    # One read: the 7 baseline days and the run's day, nothing else.
    assert range_reads() == [("read_range", asset, dt.date(2024, 3, 1), NORMAL_DAY, "feature_date")] and not whole_table_reads()
    assert md(good, "baseline_window") == "2024-03-01..2024-03-07" and md(good, "current_window") == "2024-03-08..2024-03-08"
    assert md(good, "current_rows") == N_ENTITIES and md(good, "baseline_rows") == 7 * N_ENTITIES
    assert md(good, "worst_ks_statistic") < 0.25 and md(good, "drifted_columns") == []

    result, bad = run_check(check, spy, SHIFTED_DAY)
    assert result.success  # WARN, non-blocking: the run goes on
    assert not bad.passed and bad.severity == WARN
    assert range_reads() == [("read_range", asset, dt.date(2024, 3, 2), SHIFTED_DAY, "feature_date")]
    assert md(bad, "baseline_window") == "2024-03-02..2024-03-08"  # the 7 days just before, normal day included
    columns = {c["column"]: c for c in md(bad, "columns")}
    assert list(columns) == list(M.DRIFT_COLUMNS[asset])
    worst = md(bad, "worst_column")
    assert columns[worst]["statistic"] == md(bad, "worst_ks_statistic") == max(c["statistic"] for c in columns.values())
    assert md(bad, "worst_ks_statistic") > 0.25 and worst in md(bad, "drifted_columns")
    for c in columns.values():
        assert c["n_baseline"] > c["n_current"] > 0 and {"p_value", "mean_current", "mean_baseline"} <= set(c)
    lead = "events_30d" if asset == "user_features" else "views_7d"
    assert lead in md(bad, "drifted_columns") and columns[lead]["mean_current"] > 2 * columns[lead]["mean_baseline"]
    assert "❌" in md(bad, "summary") and "drifted" in (bad.description or "")
    json.dumps(md(bad, "columns"), allow_nan=False)


def test_feature_drift_on_the_first_day_has_no_baseline(spy: SpyLakehouse) -> None:
    write_features(spy, "user_features", [FIRST])
    result, evaluation = run_check(M.feature_drift_check("user_features", DAILY), spy, FIRST)
    assert result.success and evaluation.passed
    assert "no baseline" in md(evaluation, "note") and "no baseline" in (evaluation.description or "")
    assert md(evaluation, "baseline_rows") == 0 and md(evaluation, "baseline_window") == "2024-02-23..2024-02-29"
    assert range_reads() == [("read_range", "user_features", dt.date(2024, 2, 23), FIRST, "feature_date")]


def test_feature_drift_over_a_run_range_and_config(spy: SpyLakehouse) -> None:
    write_features(spy, "item_features", [*BASELINE, NORMAL_DAY, SHIFTED_DAY], shifted={SHIFTED_DAY})
    check = M.feature_drift_check("item_features", DAILY)
    _, evaluation = run_check(check, spy, NORMAL_DAY, SHIFTED_DAY, config={"baseline_days": 3})
    assert range_reads() == [("read_range", "item_features", dt.date(2024, 3, 5), SHIFTED_DAY, "feature_date")]
    assert md(evaluation, "current_window") == "2024-03-08..2024-03-09" and md(evaluation, "current_rows") == 2 * N_ENTITIES
    assert md(evaluation, "baseline_window") == "2024-03-05..2024-03-07" and md(evaluation, "baseline_rows") == 3 * N_ENTITIES
    assert not evaluation.passed  # half of the run's rows shifted

    # A tolerant threshold passes; a min_rows above the data size skips every column and says so.
    _, tolerant = run_check(check, spy, SHIFTED_DAY, config={"max_ks_statistic": 1.0})
    assert tolerant.passed and md(tolerant, "max_ks_statistic") == 1.0
    _, skipped = run_check(check, spy, SHIFTED_DAY, config={"min_rows": 10 * N_ENTITIES})
    assert skipped.passed and "skipped" in md(skipped, "note")
    assert set(md(skipped, "skipped_columns")) == set(M.DRIFT_COLUMNS["item_features"])
    assert all("fewer than 2000" in why for why in md(skipped, "skipped_columns").values())


def test_feature_drift_skips_a_sparse_column_and_says_so(spy: SpyLakehouse) -> None:
    rows = [r for d in [*BASELINE, NORMAL_DAY] for r in user_features_rows(d)]
    for r in rows:
        if r["feature_date"] == NORMAL_DAY and r["user_id"] >= 20:
            r["mean_rating_30d"] = None  # only 18 ratings today (every 10th user is null anyway)
    spy.overwrite_range("user_features", pa.Table.from_pylist(rows, schema=USER_FEATURES_SCHEMA), FIRST, NORMAL_DAY, column="feature_date")
    _, evaluation = run_check(M.feature_drift_check("user_features", DAILY), spy, NORMAL_DAY)
    assert evaluation.passed
    assert set(md(evaluation, "skipped_columns")) == {"mean_rating_30d"}
    assert "current 18" in md(evaluation, "skipped_columns")["mean_rating_30d"]
    assert "skipped mean_rating_30d" in (evaluation.description or "")


def test_null_rate_warns_on_a_day_with_missing_device(spy: SpyLakehouse) -> None:
    day2 = FIRST + dt.timedelta(days=1)
    rows = raw_events_rows(FIRST) + raw_events_rows(day2, missing_device=20)  # 50% on day 2
    spy.overwrite_range("raw_events", pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA), FIRST, day2)
    check = M.null_rate_check(DAILY)

    result, good = run_check(check, spy, FIRST)
    assert result.success and good.passed and md(good, "offending") == []
    assert range_reads() == [("read_range", "raw_events", FIRST, FIRST, "event_date")] and not whole_table_reads()
    assert md(good, "rows_read") == 40 and md(good, "null_rates_by_day") == {FIRST.isoformat(): {c: 0.0 for c in M.CONTEXT_COLUMNS}}

    result, bad = run_check(check, spy, day2)
    assert result.success and not bad.passed and bad.severity == WARN
    assert range_reads() == [("read_range", "raw_events", day2, day2, "event_date")]
    assert md(bad, "offending") == [{"day": day2.isoformat(), "column": "device", "null_rate": 0.5, "max_null_rate": 0.2}]
    table = md(bad, "null_rates")
    assert "| day | events | device | session_id | surface | position | value |" in table and "50.00% ❌" in table
    assert "device" in (bad.description or "")

    # A run over both days: rates per day, only the bad day offends; a looser device threshold passes.
    _, both = run_check(check, spy, FIRST, day2)
    assert set(md(both, "null_rates_by_day")) == {FIRST.isoformat(), day2.isoformat()} and len(md(both, "offending")) == 1
    _, loose = run_check(check, spy, day2, config={"max_null_rate": {"device": 0.6}})
    assert loose.passed and md(loose, "max_null_rate") == {**{c: 0.2 for c in M.CONTEXT_COLUMNS}, "device": 0.6}


def test_null_rate_counts_value_only_for_events_that_carry_one(spy: SpyLakehouse) -> None:
    rows = raw_events_rows(FIRST, n=70)
    for r in rows:
        if r["event_type"] not in M.VALUE_EVENT_TYPES:
            r["value"] = None  # already None: those events carry no value
        elif r["event_type"] == "complete":
            r["value"] = None  # a third of the value-carrying events lost theirs
    spy.overwrite_range("raw_events", pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA), FIRST, FIRST)
    _, evaluation = run_check(M.null_rate_check(DAILY), spy, FIRST)
    assert not evaluation.passed
    ((offence,),) = [md(evaluation, "offending")]
    assert offence["column"] == "value" and offence["null_rate"] == pytest.approx(1 / 3)


def test_dead_letter_rate_warns_on_a_day_with_ten_percent_dead_letters(spy: SpyLakehouse) -> None:
    day2, day3 = FIRST + dt.timedelta(days=1), FIRST + dt.timedelta(days=2)
    reasons = {"unknown_item": 60, "null_id": 25, "malformed_timestamp": 8, "invalid_value": 4, "stale_timestamp": 2}
    reasons["oversized_payload"] = 1  # sixth: not among the top 5
    audit = [audit_row(FIRST, 1000, 10, {"null_id": 10}), audit_row(day2, 1000, 100, reasons), audit_row(day3, 500, 0)]
    spy.overwrite_range("ingestion_audit", pa.Table.from_pylist(audit, schema=AUDIT_SCHEMA), FIRST, day3)
    check = M.dead_letter_rate_check(DAILY)
    (spec,) = check.check_specs
    assert spec.asset_key == dg.AssetKey("raw_events")  # attached to raw_events, reads the audit

    result, good = run_check(check, spy, FIRST)
    assert result.success and good.passed
    assert range_reads() == [("read_range", "ingestion_audit", FIRST, FIRST, "event_date")] and not whole_table_reads()
    assert md(good, "dead_letter_rates") == {FIRST.isoformat(): 0.01}

    result, bad = run_check(check, spy, day2)
    assert result.success and not bad.passed and bad.severity == WARN
    assert range_reads() == [("read_range", "ingestion_audit", day2, day2, "event_date")]
    assert md(bad, "dead_letter_rates") == {day2.isoformat(): 0.1}
    assert md(bad, "worst_day") == day2.isoformat() and md(bad, "worst_day_rate") == 0.1
    top = md(bad, "worst_day_top_reasons")
    assert [t["reason"] for t in top] == ["unknown_item", "null_id", "malformed_timestamp", "invalid_value", "stale_timestamp"]
    assert top[0] == {"reason": "unknown_item", "count": 60, "share_of_dead_letters": 0.6}
    assert md(bad, "offending_days") == [{"day": day2.isoformat(), "dead_letter_rate": 0.1, "dead_lettered": 100, "lines_read": 1000}]

    # Over the three days: totals, the worst day among them, and a missing audit day reported.
    _, span = run_check(check, spy, FIRST, day3 + dt.timedelta(days=1))
    assert md(span, "totals") == {"lines_read": 2500, "dead_lettered": 110, "dead_letter_rate": 0.044, "days": 3}
    assert md(span, "worst_day") == day2.isoformat() and not span.passed
    assert md(span, "days_without_audit") == [(day3 + dt.timedelta(days=1)).isoformat()]
    _, loose = run_check(check, spy, day2, config={"max_dead_letter_rate": 0.15})
    assert loose.passed


def test_missing_tables_fail_with_a_warning(spy: SpyLakehouse) -> None:
    for check, table in [
        (M.feature_drift_check("user_features", DAILY), "user_features"),
        (M.null_rate_check(DAILY), "raw_events"),
        (M.dead_letter_rate_check(DAILY), "ingestion_audit"),
    ]:
        result, evaluation = run_check(check, spy, FIRST)
        assert result.success and not evaluation.passed and evaluation.severity == WARN
        assert table in (evaluation.description or "")


def test_all_monitor_checks_are_partitioned_non_blocking_warnings() -> None:
    checks = M.all_monitor_checks(DAILY)
    specs = [s for c in checks for s in c.check_specs]
    assert sorted((s.asset_key.to_user_string(), s.name) for s in specs) == [
        ("item_features", "feature_drift"),
        ("raw_events", "dead_letter_rate"),
        ("raw_events", "null_rate"),
        ("user_features", "feature_drift"),
    ]
    assert all(s.partitions_def == DAILY and not s.blocking and s.description for s in specs)
    assert len({c.node_def.name for c in checks}) == 4  # distinct op names
    with pytest.raises(ValueError, match="no drift columns"):
        M.feature_drift_check("raw_events", DAILY)
    # They load together with the GX checks on the same assets.
    from recsys_assets.quality.gx_suites import all_gx_checks

    stubs = [dg.AssetSpec(a, partitions_def=DAILY) for a in ("raw_events", "user_features", "item_features")]
    gx = [c for c in all_gx_checks(DAILY) if all(s.partitions_def == DAILY for s in c.check_specs)]
    defs = dg.Definitions(assets=stubs, asset_checks=[*checks, *gx], resources={"lakehouse": LakehouseResource()})
    graph = defs.resolve_asset_graph()
    names = {"feature_drift", "null_rate", "dead_letter_rate", "gx_raw_events", "gx_user_features", "gx_item_features"}
    assert {k.name for k in graph.asset_check_keys} == names


def test_unpartitioned_checks_use_the_newest_day_or_the_whole_table(spy: SpyLakehouse) -> None:
    write_features(spy, "user_features", [*BASELINE, NORMAL_DAY, SHIFTED_DAY], shifted={SHIFTED_DAY})
    _, drift = run_check(M.feature_drift_check("user_features", None), spy)
    assert md(drift, "current_window") == "2024-03-09..2024-03-09" and not drift.passed  # the newest day, shifted
    assert range_reads() == [("read_range", "user_features", dt.date(2024, 3, 2), SHIFTED_DAY, "feature_date")]

    day2 = FIRST + dt.timedelta(days=1)
    rows = raw_events_rows(FIRST) + raw_events_rows(day2, missing_device=20)
    spy.overwrite_range("raw_events", pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA), FIRST, day2)
    _, nulls = run_check(M.null_rate_check(None), spy)
    assert set(md(nulls, "null_rates_by_day")) == {FIRST.isoformat(), day2.isoformat()} and not nulls.passed
    assert "partition_range" not in nulls.metadata


def test_null_rate_rejects_unknown_threshold_columns(spy: SpyLakehouse) -> None:
    check = M.null_rate_check(DAILY)
    result = dg.materialize(
        [dg.AssetSpec("raw_events", partitions_def=DAILY), check],
        selection=dg.AssetSelection.checks(check),
        tags={"dagster/partition": FIRST.isoformat()},
        resources={"lakehouse": spy},
        run_config={"ops": {check.node_def.name: {"config": {"max_null_rate": {"devices": 0.5}}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "unknown columns ['devices']" in str(failure.event_specific_data.error)


def test_feature_drift_in_a_staging_run_compares_the_staged_day_with_the_live_baseline(spy: SpyLakehouse) -> None:
    from resources.lakehouse import STAGING_TAG

    write_features(spy, "user_features", [*BASELINE, NORMAL_DAY])  # live history
    staged = LakehouseResource(root_uri=spy.root_uri, staging="bf-1")
    write_features(staged, "user_features", [NORMAL_DAY], shifted={NORMAL_DAY})  # a backfill restates the day, shifted
    check = M.feature_drift_check("user_features", DAILY)
    _, live = run_check(check, spy, NORMAL_DAY)
    assert live.passed  # production still reads the live day
    result = dg.materialize(
        [dg.AssetSpec("user_features", partitions_def=DAILY), check],
        selection=dg.AssetSelection.checks(check),
        tags={"dagster/partition": NORMAL_DAY.isoformat(), STAGING_TAG: "bf-1"},
        resources={"lakehouse": spy},
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and md(evaluation, "baseline_rows") == 7 * N_ENTITIES and md(evaluation, "current_rows") == N_ENTITIES
    assert "_staging" in md(evaluation, "table_uri")
