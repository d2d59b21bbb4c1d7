"""Data-quality monitors beyond Great Expectations: feature drift, context null rates, dead letters.

GX suites (``gx_suites.py``) check that each row is valid. These checks look at the data
as a population and warn when it stops looking like itself, even though every row is valid:

======================  ===============  ============================================================
check                   asset            warns when
======================  ===============  ============================================================
``feature_drift``       user_features,   a key numeric feature's distribution on the run's days
                        item_features    differs from the ``baseline_days`` days before them
                                         (two-sample Kolmogorov-Smirnov statistic above
                                         ``max_ks_statistic``)
``null_rate``           raw_events       an optional context column (device, session, surface,
                                         position; value of play/complete/rating events) is null
                                         too often on a day
``dead_letter_rate``    raw_events       ingestion dead-lettered too large a share of a day's
                                         landing lines (read from ``ingestion_audit``)
======================  ===============  ============================================================

All are WARN severity and non-blocking: each signals something a person should look at
(a broken client release, an upstream schema change, a pipeline bug) that need not stop
the day's recommendations. The computations are pure functions of Arrow/pandas data
(``ks_drift``, ``null_rates``, ``dead_letter_rates``); the factories wrap them as
partition-aware Dagster asset checks that read only the run's days (plus, for drift, the
baseline window just before them). Thresholds are run config of each check.

(No ``from __future__ import annotations``: Dagster resolves the checks' context, config and
resource annotations when they are defined.)
"""

import datetime as dt
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from scipy import stats

from recsys_assets.features.transforms import day_range
from recsys_assets.quality.common import jsonable, run_day_range
from resources.lakehouse import LakehouseResource

SEVERITY = dg.AssetCheckSeverity.WARN
FEATURE_DATE = "feature_date"
EVENT_DATE = "event_date"

# Key numeric features whose distributions the drift check compares, per feature table.
DRIFT_COLUMNS: dict[str, tuple[str, ...]] = {
    "user_features": ("events_30d", "positives_30d", "mean_rating_30d", "distinct_items_30d", "days_since_last_activity"),
    "item_features": ("popularity_30d", "views_7d", "trend_velocity", "ctr_7d", "item_mean_rating_30d"),
}

# Optional context columns of raw_events; ``value`` counts only for the event types that carry one.
CONTEXT_COLUMNS: tuple[str, ...] = ("device", "session_id", "surface", "position", "value")
VALUE_EVENT_TYPES: tuple[str, ...] = ("play", "complete", "rating")
DEFAULT_MAX_NULL_RATE = 0.2
TOP_REASONS = 5  # dead-letter reasons of the worst day shown in the metadata


# ------------------------------------------------------------------------- helpers


def _float(value: Any) -> float | None:
    """A finite float or None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _pct(value: Any) -> str:
    value = _float(value)
    return "–" if value is None else f"{100 * value:.2f}%"


def _num(value: Any, digits: int = 3) -> str:
    value = _float(value)
    return "–" if value is None else f"{value:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _span(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


def _table_info(lakehouse: LakehouseResource, name: str) -> dict[str, Any]:
    return {"table_uri": dg.MetadataValue.path(lakehouse.table_uri(name)), "delta_version": lakehouse.version(name)}


def _result(passed: bool, text: str, metadata: Mapping[str, Any]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=passed, severity=SEVERITY, metadata=dict(metadata), description=text)


def _missing_table(lakehouse: LakehouseResource, name: str) -> dg.AssetCheckResult:
    return _result(False, f"table {name} does not exist", {"table_uri": dg.MetadataValue.path(lakehouse.table_uri(name))})


def _newest_day(lakehouse: LakehouseResource, name: str, column: str) -> dt.date | None:
    values = lakehouse.read(name, columns=[column]).column(column)
    return pc.max(values).as_py() if len(values) else None


def _build(
    asset: str,
    name: str,
    description: str,
    partitions_def: dg.PartitionsDefinition | None,
    fn: Any,
    metadata: Mapping[str, Any],
) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():  # partitioned check specs are a preview API, used deliberately
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.asset_check(
            asset=asset,
            name=name,
            description=description,
            blocking=False,
            partitions_def=partitions_def,
            metadata=dict(metadata),
        )(fn)


# ===================================================================== feature drift
def ks_drift(current: pd.DataFrame, baseline: pd.DataFrame, columns: Sequence[str], min_rows: int = 30) -> list[dict[str, Any]]:
    """Two-sample Kolmogorov-Smirnov comparison of ``columns`` between two frames.

    Nulls (and NaN) are dropped per column. A column missing from either frame, or with
    fewer than ``min_rows`` values on either side, is skipped: its ``statistic`` is None
    and ``skipped`` says why. One dict per column, in order: ``column``, ``statistic``,
    ``p_value``, ``n_current``, ``n_baseline``, ``mean_current``, ``mean_baseline``,
    ``skipped``.
    """
    results: list[dict[str, Any]] = []
    for column in columns:
        row: dict[str, Any] = {
            "column": column,
            "statistic": None,
            "p_value": None,
            "n_current": 0,
            "n_baseline": 0,
            "mean_current": None,
            "mean_baseline": None,
            "skipped": None,
        }
        absent = [side for side, frame in (("current", current), ("baseline", baseline)) if column not in frame.columns]
        if absent:
            row["skipped"] = f"column missing from the {' and '.join(absent)} data"
            results.append(row)
            continue
        cur = pd.to_numeric(current[column], errors="coerce").dropna().to_numpy(dtype=np.float64)
        base = pd.to_numeric(baseline[column], errors="coerce").dropna().to_numpy(dtype=np.float64)
        row.update(
            n_current=int(cur.size),
            n_baseline=int(base.size),
            mean_current=_float(cur.mean()) if cur.size else None,
            mean_baseline=_float(base.mean()) if base.size else None,
        )
        if cur.size < min_rows or base.size < min_rows:
            row["skipped"] = f"fewer than {min_rows} non-null values (current {cur.size}, baseline {base.size})"
        else:
            with warnings.catch_warnings():  # exact p-value falling back to asymptotic: irrelevant here
                warnings.simplefilter("ignore", RuntimeWarning)
                ks = stats.ks_2samp(cur, base)
            row.update(statistic=float(ks.statistic), p_value=_float(ks.pvalue))
        results.append(row)
    return results


class FeatureDriftConfig(dg.Config):
    """Thresholds of the ``feature_drift`` check."""

    baseline_days: int = Field(default=7, ge=1, description="Days immediately before the run's first day that form the baseline.")
    max_ks_statistic: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Warn when a column's two-sample KS statistic exceeds this (p-values are meaningless at these sample sizes).",
    )
    min_rows: int = Field(default=30, ge=1, description="Skip a column with fewer non-null values than this on either side.")


def _drift_markdown(rows: list[dict[str, Any]], threshold: float) -> str:
    body = []
    for r in sorted(rows, key=lambda r: -(r["statistic"] if r["statistic"] is not None else -1.0)):
        if r["statistic"] is None:
            ok = "⏭️"
        else:
            ok = "❌" if r["statistic"] > threshold else "✅"
        body.append(
            [
                ok,
                f"`{r['column']}`",
                _num(r["statistic"]),
                _num(r["p_value"], 4),
                f"{r['n_current']} / {r['n_baseline']}",
                f"{_num(r['mean_current'])} / {_num(r['mean_baseline'])}",
                r["skipped"] or "",
            ]
        )
    return _md_table(["ok", "column", "KS statistic", "p-value", "n current / baseline", "mean current / baseline", "note"], body)


def feature_drift_check(asset: str, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
    """``feature_drift`` on ``user_features`` or ``item_features``: KS statistic of the run's days vs the days before.

    With a ``partitions_def`` the check compares the run's days with the
    ``baseline_days`` days just before them; without one (or in an unpartitioned run) the
    newest day of the table plays the run's part.
    """
    if asset not in DRIFT_COLUMNS:
        raise ValueError(f"no drift columns for {asset!r} (known: {sorted(DRIFT_COLUMNS)})")
    columns = DRIFT_COLUMNS[asset]
    description = (
        f"Distribution drift of {asset}'s key features ({', '.join(columns)}): the run's days against the "
        "`baseline_days` (default 7) days immediately before them, by the two-sample Kolmogorov-Smirnov "
        "statistic. Warns when any column's statistic exceeds `max_ks_statistic` (default 0.25). "
        "Passes with a note when there is no baseline yet (first days of history). Severity WARN, non-blocking."
    )
    partitioned = partitions_def is not None

    def _check(
        context: dg.AssetCheckExecutionContext, config: FeatureDriftConfig, lakehouse: LakehouseResource
    ) -> dg.AssetCheckResult:
        if not lakehouse.exists(asset):
            return _missing_table(lakehouse, asset)
        info = _table_info(lakehouse, asset)
        days = run_day_range(context) if partitioned else None
        if days is None:  # unpartitioned: the newest day against the days before it
            newest = _newest_day(lakehouse, asset, FEATURE_DATE)
            if newest is None:
                return _result(True, f"{asset} is empty: nothing to compare", info)
            days = (newest, newest)
        first, last = days
        base_start, base_end = first - dt.timedelta(days=config.baseline_days), first - dt.timedelta(days=1)
        # One contiguous read: the baseline window and the run's days.
        table = lakehouse.read_range(asset, base_start, last, column=FEATURE_DATE, columns=[*columns, FEATURE_DATE])
        before = pc.less(table.column(FEATURE_DATE), pa.scalar(first, pa.date32()))
        baseline, current = table.filter(before), table.filter(pc.invert(before))
        info.update(
            current_window=_span(first, last),
            baseline_window=_span(base_start, base_end),
            current_rows=current.num_rows,
            baseline_rows=baseline.num_rows,
            max_ks_statistic=config.max_ks_statistic,
        )
        if baseline.num_rows == 0:
            note = f"no baseline: {asset} has no rows in {_span(base_start, base_end)} (first days of history); nothing compared"
            return _result(True, note, {**info, "note": note})
        if current.num_rows == 0:
            note = f"no rows in the run's days {_span(first, last)}; nothing compared"
            return _result(True, note, {**info, "note": note})

        rows = ks_drift(current.to_pandas(), baseline.to_pandas(), columns, config.min_rows)
        compared = [r for r in rows if r["statistic"] is not None]
        skipped = [r for r in rows if r["statistic"] is None]
        drifted = [r["column"] for r in compared if r["statistic"] > config.max_ks_statistic]
        info.update(
            columns=dg.MetadataValue.json(jsonable(rows)),
            drifted_columns=dg.MetadataValue.json(drifted),
            skipped_columns=dg.MetadataValue.json({r["column"]: r["skipped"] for r in skipped}),
            summary=dg.MetadataValue.md(_drift_markdown(rows, config.max_ks_statistic)),
        )
        if not compared:
            note = f"every column skipped (fewer than {config.min_rows} non-null values on a side); nothing compared"
            return _result(True, note, {**info, "note": note})
        worst = max(compared, key=lambda r: r["statistic"])
        info.update(worst_column=worst["column"], worst_ks_statistic=worst["statistic"])
        against = f"vs {_span(base_start, base_end)}"
        if drifted:
            listed = ", ".join(f"{r['column']} (KS {r['statistic']:.3f})" for r in compared if r["column"] in drifted)
            text = f"{len(drifted)}/{len(compared)} columns drifted {against}: {listed}"
        else:
            text = f"no drift {against}: max KS {worst['statistic']:.3f} ({worst['column']}) <= {config.max_ks_statistic}"
        if skipped:
            text += f"; skipped {', '.join(r['column'] for r in skipped)}"
        context.log.info(text)
        return _result(not drifted, text, info)

    check_metadata = {"columns": ", ".join(columns), "statistic": "two-sample KS"}
    return _build(asset, "feature_drift", description, partitions_def, _check, check_metadata)


# ======================================================================== null rates
def null_rates(events: pa.Table) -> pd.DataFrame:
    """Per ``event_date``: the share of nulls in each optional context column of ``events``.

    Columns: ``event_date``, ``rows``, ``value_rows`` (events of a type that carries a
    value: play, complete, rating), then one null rate per ``CONTEXT_COLUMNS`` entry. The
    ``value`` rate is over ``value_rows`` only (NaN when a day has none; NaN values count
    as null). One row per day present, sorted by day.
    """
    columns = ["event_date", "rows", "value_rows", *CONTEXT_COLUMNS]
    if events.num_rows == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}).astype({"event_date": "object"})
    one = pa.int64()
    parts: dict[str, Any] = {"event_date": events.column("event_date")}
    for column in CONTEXT_COLUMNS[:-1]:
        parts[f"{column}_nulls"] = pc.cast(pc.is_null(events.column(column)), one)
    carries = pc.fill_null(pc.is_in(events.column("event_type"), value_set=pa.array(VALUE_EVENT_TYPES)), False)
    parts["value_rows"] = pc.cast(carries, one)
    parts["value_nulls"] = pc.cast(pc.and_(carries, pc.is_null(events.column("value"), nan_is_null=True)), one)
    sums = [name for name in parts if name != "event_date"]
    grouped = pa.table(parts).group_by("event_date").aggregate([([], "count_all"), *[(s, "sum") for s in sums]])
    frame = grouped.to_pandas().sort_values("event_date").reset_index(drop=True)
    out = pd.DataFrame({"event_date": frame["event_date"], "rows": frame["count_all"], "value_rows": frame["value_rows_sum"]})
    for column in CONTEXT_COLUMNS[:-1]:
        out[column] = frame[f"{column}_nulls_sum"] / frame["count_all"]
    out["value"] = frame["value_nulls_sum"] / frame["value_rows_sum"].where(frame["value_rows_sum"] > 0)
    return out[columns]


class NullRateConfig(dg.Config):
    """Thresholds of the ``null_rate`` check."""

    max_null_rate: dict[str, float] = Field(
        default_factory=lambda: {c: DEFAULT_MAX_NULL_RATE for c in CONTEXT_COLUMNS},
        description=(
            f"Highest acceptable daily null rate per context column ({', '.join(CONTEXT_COLUMNS)}); columns not "
            f"given keep {DEFAULT_MAX_NULL_RATE}. `value` counts only play, complete and rating events."
        ),
    )


def _null_thresholds(config: NullRateConfig) -> dict[str, float]:
    unknown = set(config.max_null_rate) - set(CONTEXT_COLUMNS)
    if unknown:
        raise ValueError(f"max_null_rate has unknown columns {sorted(unknown)} (known: {list(CONTEXT_COLUMNS)})")
    return {**{c: DEFAULT_MAX_NULL_RATE for c in CONTEXT_COLUMNS}, **config.max_null_rate}


def null_rate_check(partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
    """``null_rate`` on ``raw_events``: daily null share of the optional context columns."""
    description = (
        f"Daily share of nulls in raw_events' optional context columns ({', '.join(CONTEXT_COLUMNS)}; `value` only "
        f"for {', '.join(VALUE_EVENT_TYPES)} events) over the run's days. Warns when a column's rate exceeds its "
        f"`max_null_rate` (default {DEFAULT_MAX_NULL_RATE}) on any day: a client release that stops sending context "
        "shows here first. MovieLens data legitimately lacks context, hence WARN severity, non-blocking."
    )
    partitioned = partitions_def is not None

    def _check(
        context: dg.AssetCheckExecutionContext, config: NullRateConfig, lakehouse: LakehouseResource
    ) -> dg.AssetCheckResult:
        thresholds = _null_thresholds(config)
        if not lakehouse.exists("raw_events"):
            return _missing_table(lakehouse, "raw_events")
        info = _table_info(lakehouse, "raw_events")
        days = run_day_range(context) if partitioned else None
        needed = ["event_date", "event_type", *CONTEXT_COLUMNS]
        if days:
            events = lakehouse.read_range("raw_events", days[0], days[1], column=EVENT_DATE, columns=needed)
            info["partition_range"] = _span(*days)
        else:
            events = lakehouse.read("raw_events", columns=needed)
        records = null_rates(events).to_dict("records")
        by_day = {r["event_date"].isoformat(): {c: _float(r[c]) for c in CONTEXT_COLUMNS} for r in records}
        counts = {r["event_date"].isoformat(): int(r["rows"]) for r in records}
        offending = [
            {"day": day, "column": c, "null_rate": rate, "max_null_rate": thresholds[c]}
            for day, day_rates in by_day.items()
            for c, rate in day_rates.items()
            if rate is not None and rate > thresholds[c]
        ]
        bad = {(o["day"], o["column"]) for o in offending}
        table_rows = [
            [day, counts[day], *[_pct(rate) + (" ❌" if (day, c) in bad else "") for c, rate in day_rates.items()]]
            for day, day_rates in by_day.items()
        ]
        empty_days = [d.isoformat() for d in day_range(*days) if d.isoformat() not in by_day] if days else []
        info.update(
            rows_read=events.num_rows,
            days_checked=len(by_day),
            null_rates=dg.MetadataValue.md(_md_table(["day", "events", *CONTEXT_COLUMNS], table_rows) if table_rows else "No events."),
            null_rates_by_day=dg.MetadataValue.json(by_day),
            offending=dg.MetadataValue.json(offending),
            max_null_rate=dg.MetadataValue.json(thresholds),
            days_without_events=dg.MetadataValue.json(empty_days),
        )
        if offending:
            worst = max(offending, key=lambda o: o["null_rate"] - o["max_null_rate"])
            text = (
                f"{len(offending)} (day, column) null rate(s) above threshold; worst {worst['column']} on {worst['day']}: "
                f"{worst['null_rate']:.1%} > {worst['max_null_rate']:.1%}"
            )
        else:
            text = f"context null rates within thresholds on {len(by_day)} day(s)"
        context.log.info(text)
        return _result(not offending, text, info)

    return _build("raw_events", "null_rate", description, partitions_def, _check, {"columns": ", ".join(CONTEXT_COLUMNS)})


# ================================================================= dead-letter rate
def dead_letter_rates(audit: pa.Table) -> pd.DataFrame:
    """Per ``event_date`` of an ``ingestion_audit`` table: ``dead_lettered / lines_read``.

    Columns: ``event_date``, ``lines_read``, ``dead_lettered``, ``dead_letter_rate`` (NaN
    on a day with no lines), ``dead_letter_reasons`` (a dict reason -> count). Sorted by day.
    """
    frame = pd.DataFrame(
        {
            "event_date": audit.column("event_date").to_pylist(),
            "lines_read": pd.array(audit.column("lines_read").to_pylist(), dtype="float64"),
            "dead_lettered": pd.array(audit.column("dead_lettered").to_pylist(), dtype="float64"),
            "dead_letter_reasons": [dict(r or []) for r in audit.column("dead_letter_reasons").to_pylist()],
        }
    )
    frame[["lines_read", "dead_lettered"]] = frame[["lines_read", "dead_lettered"]].fillna(0).astype("int64")
    frame["dead_letter_rate"] = frame["dead_lettered"] / frame["lines_read"].where(frame["lines_read"] > 0)
    columns = ["event_date", "lines_read", "dead_lettered", "dead_letter_rate", "dead_letter_reasons"]
    return frame.sort_values("event_date").reset_index(drop=True)[columns]


class DeadLetterRateConfig(dg.Config):
    """Thresholds of the ``dead_letter_rate`` check."""

    max_dead_letter_rate: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Warn when a day's dead-lettered share of landing lines exceeds this."
    )


def dead_letter_rate_check(partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
    """``dead_letter_rate`` on ``raw_events``: the daily share of landing lines ingestion rejected."""
    description = (
        "Daily share of landing lines that ingestion dead-lettered (`dead_lettered / lines_read` from "
        "`ingestion_audit`) over the run's days. Warns when any day exceeds `max_dead_letter_rate` (default 0.05); "
        "the metadata names the worst day's top reasons. Severity WARN, non-blocking."
    )
    partitioned = partitions_def is not None

    def _check(
        context: dg.AssetCheckExecutionContext, config: DeadLetterRateConfig, lakehouse: LakehouseResource
    ) -> dg.AssetCheckResult:
        if not lakehouse.exists("ingestion_audit"):
            return _missing_table(lakehouse, "ingestion_audit")
        info = _table_info(lakehouse, "ingestion_audit")
        days = run_day_range(context) if partitioned else None
        if days:
            audit = lakehouse.read_range("ingestion_audit", days[0], days[1], column=EVENT_DATE)
            info["partition_range"] = _span(*days)
        else:
            audit = lakehouse.read("ingestion_audit")
        rates = dead_letter_rates(audit)
        limit = config.max_dead_letter_rate
        records = rates.to_dict("records")
        for r in records:
            r["day"], r["dead_letter_rate"] = r.pop("event_date").isoformat(), _float(r["dead_letter_rate"])
        rated = [r for r in records if r["dead_letter_rate"] is not None]
        keep = ("day", "dead_letter_rate", "dead_lettered", "lines_read")
        offending = [{k: r[k] for k in keep} for r in rated if r["dead_letter_rate"] > limit]
        lines, dead = int(rates["lines_read"].sum()), int(rates["dead_lettered"].sum())
        totals = {"lines_read": lines, "dead_lettered": dead, "dead_letter_rate": dead / lines if lines else None, "days": len(records)}
        flagged = {o["day"] for o in offending}
        table_rows = [
            [r["day"], r["lines_read"], r["dead_lettered"], _pct(r["dead_letter_rate"]) + (" ❌" if r["day"] in flagged else "")]
            for r in records
        ]
        missing = [d.isoformat() for d in day_range(*days) if d.isoformat() not in {r["day"] for r in records}] if days else []
        info.update(
            dead_letter_rates=dg.MetadataValue.json({r["day"]: r["dead_letter_rate"] for r in records}),
            summary=dg.MetadataValue.md(
                _md_table(["day", "lines read", "dead-lettered", "rate"], table_rows) if records else "No audit rows."
            ),
            totals=dg.MetadataValue.json(jsonable(totals)),
            offending_days=dg.MetadataValue.json(jsonable(offending)),
            max_dead_letter_rate=limit,
            days_without_audit=dg.MetadataValue.json(missing),
        )
        if not rated:
            text = "no landing lines in the run's days"
            context.log.info(text)
            return _result(True, text, info)
        worst = max(rated, key=lambda r: r["dead_letter_rate"])
        reasons = sorted(worst["dead_letter_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        n_dead = worst["dead_lettered"]
        top = [{"reason": k, "count": int(v), "share_of_dead_letters": v / n_dead if n_dead else None} for k, v in reasons]
        info.update(worst_day=worst["day"], worst_day_rate=worst["dead_letter_rate"], worst_day_top_reasons=dg.MetadataValue.json(top))
        worst_text = f"worst {worst['day']}: {worst['dead_letter_rate']:.1%}" + (f" (top reason {reasons[0][0]})" if reasons else "")
        if offending:
            text = f"{len(offending)} day(s) above {limit:.1%} dead letters; {worst_text}"
        else:
            text = f"dead-letter rate <= {limit:.1%} on every day ({worst_text})"
        context.log.info(text)
        return _result(not offending, text, info)

    return _build("raw_events", "dead_letter_rate", description, partitions_def, _check, {"source": "ingestion_audit"})


# ========================================================================= all checks
def all_monitor_checks(partitions_def: dg.PartitionsDefinition | None) -> list[dg.AssetChecksDefinition]:
    """The four monitors: drift on user_features and item_features, null and dead-letter rates on raw_events."""
    return [
        feature_drift_check("user_features", partitions_def),
        feature_drift_check("item_features", partitions_def),
        null_rate_check(partitions_def),
        dead_letter_rate_check(partitions_def),
    ]
