"""Backfills into a staging namespace, their validation, the cutover into live, and rollback.

A backfill run tagged ``recsys/staging=<id>`` writes every table it materializes to
``_staging/<id>/<table>`` (see ``LakehouseResource``) while production keeps reading the
live tables. When the backfill has finished, :func:`cut_over` validates each staged
table (its Great Expectations suite, the row count and the distribution of every
numeric column compared with the live rows of the same partitions) and, only if all
pass, replaces exactly the staged partitions of each live table in one Delta commit
per table. Every decision is appended to ``backfill_cutovers`` with the live versions
before and after, which is what :func:`roll_back` restores from.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from recsys_assets.quality.monitors import ks_drift
from resources.lakehouse import STAGING_DIR, LakehouseResource, typed_partition_values

CUTOVERS_TABLE = "backfill_cutovers"
CUTOVERS_SCHEMA = pa.schema(
    [
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("backfill_id", pa.string()),
        ("action", pa.string()),  # cutover | rejected | rollback
        ("table_name", pa.string()),
        ("partition_column", pa.string()),
        ("partitions", pa.list_(pa.string())),
        ("live_version_before", pa.int64()),
        ("live_version_after", pa.int64()),
        ("validation", pa.string()),  # JSON
        ("dagster_run_id", pa.string()),
    ]
)
ID_COLUMNS = {"user_id", "item_id", "source_line", "position", "rank"}


@dataclass(frozen=True)
class CutoverRules:
    max_row_count_change: float = 0.5  # |staged/live - 1| allowed per table
    max_ks_statistic: float = 0.5  # per numeric column, staged vs live
    min_rows_for_ks: int = 30


@dataclass
class TableValidation:
    table: str
    partition_column: str | None
    partitions: list[Any]
    rows_staged: int
    rows_live: int
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions": [str(p) for p in self.partitions],
            "rows_staged": self.rows_staged,
            "rows_live": self.rows_live,
            "checks": self.checks,
            "problems": self.problems,
            "passed": self.passed,
        }


def staged_tables(lakehouse: LakehouseResource, backfill_id: str) -> list[str]:
    """Names of the Delta tables a backfill has staged."""
    fs, root = lakehouse.filesystem()
    base = posixpath.join(root, STAGING_DIR, backfill_id)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return []
    names = []
    for info in fs.get_file_info(pafs.FileSelector(base)):
        if info.type == pafs.FileType.Directory and lakehouse.is_table(lakehouse.staging_uri(info.base_name, backfill_id)):
            names.append(info.base_name)
    return sorted(names)


def _staged_partitions(lakehouse: LakehouseResource, backfill_id: str, name: str) -> tuple[str | None, list[Any]]:
    table = lakehouse.delta_at(lakehouse.staging_uri(name, backfill_id))
    columns = table.metadata().partition_columns
    if not columns:
        return None, []
    values = {str(p[columns[0]]) for p in table.partitions()}
    return columns[0], typed_partition_values(values, pa.schema(table.schema().to_arrow()).field(columns[0]).type)


def _live_rows(lakehouse: LakehouseResource, name: str, column: str | None, values: list[Any], version: int | None = None) -> pa.Table | None:
    uri = lakehouse.live_uri(name)
    if not lakehouse.is_table(uri):
        return None
    table = lakehouse.delta_at(uri, version)
    if column is None:
        return table.to_pyarrow_table()
    return table.to_pyarrow_table(filters=[(column, "in", values)])


def validate_staged_table(lakehouse: LakehouseResource, backfill_id: str, name: str, rules: CutoverRules = CutoverRules()) -> TableValidation:
    """The same checks as production (GX suite), plus row count and distributions against live."""
    column, values = _staged_partitions(lakehouse, backfill_id, name)
    staged = lakehouse.delta_at(lakehouse.staging_uri(name, backfill_id)).to_pyarrow_table()
    live = _live_rows(lakehouse, name, column, values)
    result = TableValidation(name, column, values, staged.num_rows, 0 if live is None else live.num_rows)
    if staged.num_rows == 0:
        result.problems.append("the staged table is empty")

    from recsys_assets.quality.gx_suites import SUITE_NAMES, validate

    if name in SUITE_NAMES:
        gx = validate(name, staged)
        failed = [r.expectation_config.type + f"({r.expectation_config.kwargs.get('column', '')})" for r in gx.results if not r.success]
        result.checks["great_expectations"] = {"success": bool(gx.success), "failed": failed}
        if not gx.success:
            result.problems.append(f"Great Expectations suite {name} failed: {', '.join(failed)}")

    if live is not None and live.num_rows:
        change = staged.num_rows / live.num_rows - 1
        result.checks["row_count_change"] = round(change, 4)
        if abs(change) > rules.max_row_count_change:
            result.problems.append(
                f"row count changes by {change:+.1%} against live ({staged.num_rows} vs {live.num_rows} rows; limit {rules.max_row_count_change:.0%})"
            )
        numeric = [
            f.name
            for f in staged.schema
            if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
            and f.name not in ID_COLUMNS
            and f.name != column
            and f.name in live.column_names
        ]
        stats = ks_drift(staged.select(numeric).to_pandas(), live.select(numeric).to_pandas(), numeric, rules.min_rows_for_ks)
        drift = {s["column"]: round(s["statistic"], 4) for s in stats if s["statistic"] is not None}
        result.checks["ks_vs_live"] = drift
        worst = max(drift.items(), key=lambda kv: kv[1], default=None)
        if worst and worst[1] > rules.max_ks_statistic:
            result.problems.append(f"distribution of {worst[0]} moved too far from live (KS {worst[1]:.3f} > {rules.max_ks_statistic})")
    else:
        result.checks["row_count_change"] = "no live rows for these partitions"
    return result


def _record(lakehouse: LakehouseResource, rows: list[dict[str, Any]]) -> None:
    if rows:
        lakehouse.append(CUTOVERS_TABLE, pa.Table.from_pylist(rows, schema=CUTOVERS_SCHEMA))


def cutover_history(lakehouse: LakehouseResource, backfill_id: str | None = None) -> list[dict[str, Any]]:
    if not lakehouse.exists(CUTOVERS_TABLE):
        return []
    filters = [("backfill_id", "=", backfill_id)] if backfill_id else None
    return lakehouse.read(CUTOVERS_TABLE, filters=filters).sort_by("decided_at").to_pylist()


def _replace_partitions(lakehouse: LakehouseResource, name: str, data: pa.Table, column: str | None, values: list[Any]) -> int:
    """Replace exactly ``values`` of ``column`` in the live table (the whole table if unpartitioned)."""
    if column is None:
        return lakehouse.overwrite(name, data)
    return lakehouse.overwrite_partitions(name, data, column, values)


class CutoverRejected(Exception):
    """Validation failed: live is untouched."""

    def __init__(self, validations: list[TableValidation]):
        self.validations = validations
        problems = [f"{v.table}: {p}" for v in validations for p in v.problems]
        super().__init__("; ".join(problems))


def cut_over(lakehouse: LakehouseResource, backfill_id: str, run_id: str = "", rules: CutoverRules = CutoverRules()) -> list[TableValidation]:
    """Validate every staged table; if all pass, swap their partitions into live.

    ``lakehouse`` must be a live (non-staging) resource. Raises :class:`CutoverRejected`
    (after recording the rejection) when any table fails; live is then untouched.
    """
    if lakehouse.staging_id:
        raise ValueError("cut over with a live lakehouse resource, not a staging one")
    tables = staged_tables(lakehouse, backfill_id)
    if not tables:
        raise ValueError(f"backfill {backfill_id!r} has no staged tables")
    validations = [validate_staged_table(lakehouse, backfill_id, t, rules) for t in tables]
    now = dt.datetime.now(dt.timezone.utc)
    if not all(v.passed for v in validations):
        _record(
            lakehouse,
            [_row(now, backfill_id, "rejected", v, lakehouse.version(v.table), None, run_id) for v in validations],
        )
        raise CutoverRejected(validations)
    rows = []
    for v in validations:
        before = lakehouse.version(v.table)
        staged = lakehouse.delta_at(lakehouse.staging_uri(v.table, backfill_id)).to_pyarrow_table()
        after = _replace_partitions(lakehouse, v.table, staged, v.partition_column, v.partitions)
        rows.append(_row(now, backfill_id, "cutover", v, before, after, run_id))
    _record(lakehouse, rows)
    return validations


def roll_back(lakehouse: LakehouseResource, backfill_id: str, run_id: str = "") -> list[dict[str, Any]]:
    """Restore the partitions a cutover replaced to their pre-cutover rows (later partitions untouched)."""
    history = cutover_history(lakehouse, backfill_id)
    cutovers = [r for r in history if r["action"] == "cutover"]
    if not cutovers:
        raise ValueError(f"backfill {backfill_id!r} was never cut over")
    if history[-1]["action"] == "rollback":
        raise ValueError(f"backfill {backfill_id!r} is already rolled back")
    last = max(r["decided_at"] for r in cutovers)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for r in (r for r in cutovers if r["decided_at"] == last):
        name, column = r["table_name"], r["partition_column"] or None
        schema = lakehouse.schema(name)
        values = typed_partition_values(set(r["partitions"]), schema.field(column).type) if column else []
        before_rows = (
            _live_rows(lakehouse, name, column, values, r["live_version_before"]) if r["live_version_before"] is not None else None
        )
        data = before_rows if before_rows is not None else schema.empty_table()
        version_before = lakehouse.version(name)
        after = _replace_partitions(lakehouse, name, data.cast(schema), column, values)
        rows.append(
            {
                "decided_at": now,
                "backfill_id": backfill_id,
                "action": "rollback",
                "table_name": name,
                "partition_column": column,
                "partitions": r["partitions"],
                "live_version_before": version_before,
                "live_version_after": after,
                "validation": json.dumps({"restored_from_version": r["live_version_before"]}),
                "dagster_run_id": run_id,
            }
        )
    _record(lakehouse, rows)
    return rows


def _row(now, backfill_id, action, v: TableValidation, before, after, run_id) -> dict[str, Any]:
    return {
        "decided_at": now,
        "backfill_id": backfill_id,
        "action": action,
        "table_name": v.table,
        "partition_column": v.partition_column,
        "partitions": [str(p) for p in v.partitions],
        "live_version_before": before,
        "live_version_after": after,
        "validation": json.dumps(v.as_dict(), default=str),
        "dagster_run_id": run_id,
    }
