"""Structural checks every partitioned table gets: rows where there should be rows, keys not null.

They run inside the asset's own step over exactly the partitions that run wrote (read
back from Delta), so a check never loads history it did not produce.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc


def row_count_check(
    asset: str, table: pa.Table, day_column: str, expected_days: Iterable[dt.date], minimum: int = 1, per_day: bool = True
) -> dg.AssetCheckResult:
    """Each day in ``expected_days`` has at least ``minimum`` rows (``per_day=False``: the
    run as a whole has, for tables where a sparse day can rightly be empty)."""
    counts: dict[dt.date, int] = {}
    if table.num_rows:
        grouped = table.group_by(day_column).aggregate([([], "count_all")])
        counts = dict(zip(grouped.column(day_column).to_pylist(), grouped.column("count_all").to_pylist()))
    expected = sorted(set(expected_days))
    short = [d.isoformat() for d in expected if counts.get(d, 0) < minimum]
    passed = not short if per_day else (not expected or table.num_rows >= minimum)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="row_count",
        passed=passed,
        metadata={
            "rows": table.num_rows,
            "days_checked": len(expected),
            "days_below_minimum": dg.MetadataValue.json(short[:50]),
            "min_rows_per_day": min((counts.get(d, 0) for d in expected), default=0),
            "max_rows_per_day": max((counts.get(d, 0) for d in expected), default=0),
        },
        description=f"every day with input has >= {minimum} rows" if per_day else f"the run's days have >= {minimum} rows in all",
    )


def not_null_check(asset: str, table: pa.Table, columns: list[str]) -> dg.AssetCheckResult:
    """None of ``columns`` has a null in the rows written."""
    nulls = {c: table.column(c).null_count for c in columns}
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="not_null_keys",
        passed=not any(nulls.values()),
        metadata={"null_counts": dg.MetadataValue.json(nulls), "rows": table.num_rows},
        description=f"no nulls in {', '.join(columns)}",
    )


def unique_key_check(asset: str, table: pa.Table, columns: list[str]) -> dg.AssetCheckResult:
    """Rows are unique on ``columns``."""
    if table.num_rows == 0:
        duplicates = 0
    else:
        grouped = table.group_by(columns).aggregate([([], "count_all")])
        duplicates = int(pc.sum(pc.subtract(grouped.column("count_all"), 1)).as_py() or 0)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="unique_key",
        passed=duplicates == 0,
        metadata={"duplicate_rows": duplicates, "key": ", ".join(columns)},
        description=f"unique on ({', '.join(columns)})",
    )


def structural_check_specs(asset: str, partitions_def, unique_on: list[str] | None = None) -> list[dg.AssetCheckSpec]:
    names = ["row_count", "not_null_keys"] + (["unique_key"] if unique_on else [])
    descriptions = {
        "row_count": "Every day of the run that had input has rows.",
        "not_null_keys": "Key and timestamp columns are never null.",
        "unique_key": f"Rows are unique on ({', '.join(unique_on or [])}).",
    }
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=partitions_def, description=descriptions[name])
        for name in names
    ]
