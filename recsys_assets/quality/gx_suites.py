"""Great Expectations 1.x suites (``expectations/*.json``) as Dagster asset checks.

One suite per checked table. A suite's ``meta`` tells the loader everything it needs:

========================  ===================================================================
``asset``                 asset key the check is attached to (also the Delta table name)
``check_name``            name of the Dagster check (default ``gx_<suite>``)
``description``           shown on the check in the Dagster UI
``view``                  how the table becomes the validated frame (see ``VIEWS``)
``view_options``          keyword arguments of the view (e.g. ``derived`` columns)
``partition_column``      day column of a daily-partitioned table (``null``: unpartitioned)
``model_version_column``  unpartitioned tables holding several model versions: validate one
``severity``              ``error`` or ``warn`` (the check's ``AssetCheckSeverity``)
``blocking``              whether a failure stops downstream assets of the run
``row_id_columns``        columns identifying a row in the unexpected-row samples
``parameters``            defaults of the suite's ``{"$PARAMETER": ...}`` values; a value may
                          itself be ``{"$PARAMETER": "other"}`` (defaults to that parameter)
========================  ===================================================================

GX is called directly (dagster-ge supports GX < 1 only) on a pandas frame in one
ephemeral, offline context per process. Checks on partitioned assets carry the asset's
partitions definition and read only the days of their run.
"""

import json
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from recsys_assets.quality.common import jsonable, run_day_range
from recsys_assets import settings
from resources.lakehouse import LakehouseResource

# GX must never reach the network (no analytics); set before great_expectations is imported.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult

SUITE_NAMES: tuple[str, ...] = ("raw_events", "user_features", "item_features", "user_recommendations", "item_embeddings")
SAMPLE_SIZE = 5  # unexpected values / rows kept per expectation in the check metadata
TableLike = pa.Table | pd.DataFrame


# --------------------------------------------------------------------------- suites
def expectations_dir() -> Path:
    return settings.project_root() / "expectations"


def suite_dict(name: str) -> dict[str, Any]:
    """The suite's JSON document, read afresh (edits apply without a restart)."""
    path = expectations_dir() / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no Great Expectations suite {name!r} at {path}")
    return json.loads(path.read_text())


def suite_meta(name: str) -> dict[str, Any]:
    return suite_dict(name).get("meta", {})


def load_suite(name: str) -> "ExpectationSuite":
    """``expectations/<name>.json`` as a GX ``ExpectationSuite`` (a fresh object per call)."""
    import great_expectations as gx

    return gx.ExpectationSuite(**suite_dict(name))


# ---------------------------------------------------------------------- list helpers
def _to_arrow(table: TableLike) -> pa.Table:
    return pa.Table.from_pandas(table, preserve_index=False) if isinstance(table, pd.DataFrame) else table


def _list_values(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat float values, parent row of each value, row-is-null mask) of a list column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flat = pc.list_flatten(arr).cast(pa.float64()).to_numpy(zero_copy_only=False)  # null elements -> NaN
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    return flat, parents, arr.is_null().to_numpy(zero_copy_only=False)


def _per_row(values: np.ndarray, parents: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(parents, weights=values, minlength=n).astype(np.float64)


def _masked(values: np.ndarray, null_mask: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_, mask=null_mask)


# ------------------------------------------------------------------ derived columns
def occurred_date(t: pa.Table, **_: Any) -> pa.Array:
    """UTC date of ``occurred_at`` (compared with the partition column ``event_date``)."""
    return pc.cast(t.column("occurred_at"), pa.date32())


def rating_value(t: pa.Table, **_: Any) -> pa.Array:
    """``value`` of rating events, null for every other event type."""
    is_rating = pc.fill_null(pc.equal(t.column("event_type"), "rating"), False)
    return pc.if_else(is_rating, t.column("value"), pa.scalar(None, pa.float64()))


def _snapped_sum(col: pa.ChunkedArray, tolerance: float) -> pa.Array:
    """Row sums of a list column, snapped to exactly 0 or 1 when within ``tolerance`` (else raw)."""
    flat, parents, nulls = _list_values(col)
    sums = _per_row(flat, parents, len(nulls))
    sums = np.where(np.abs(sums) <= tolerance, 0.0, np.where(np.abs(sums - 1.0) <= tolerance, 1.0, sums))
    return _masked(sums, nulls, pa.float64())


def genre_affinity_sum(t: pa.Table, sum_tolerance: float = 1e-3, **_: Any) -> pa.Array:
    """Sum of ``genre_affinity`` (0 or 1 when within ``sum_tolerance``, the raw sum otherwise)."""
    return _snapped_sum(t.column("genre_affinity"), sum_tolerance)


def _list_length(t: pa.Table, column: str) -> pa.Array:
    return pc.list_value_length(t.column(column).combine_chunks())


def genre_affinity_length(t: pa.Table, **_: Any) -> pa.Array:
    return _list_length(t, "genre_affinity")


def genre_vector_length(t: pa.Table, **_: Any) -> pa.Array:
    return _list_length(t, "genre_vector")


def genre_vector_non_binary(t: pa.Table, **_: Any) -> pa.Array:
    """Entries of ``genre_vector`` that are neither 0 nor 1 (NaN and null entries count)."""
    flat, parents, nulls = _list_values(t.column("genre_vector"))
    bad = ~((flat == 0.0) | (flat == 1.0))
    return _masked(_per_row(bad.astype(np.float64), parents, len(nulls)).astype(np.int64), nulls, pa.int64())


def dim(t: pa.Table, **_: Any) -> pa.Array:
    """Length of ``embedding``."""
    return _list_length(t, "embedding")


def all_finite(t: pa.Table, **_: Any) -> pa.Array:
    """Whether every entry of ``embedding`` is finite (no NaN, inf or null)."""
    flat, parents, nulls = _list_values(t.column("embedding"))
    bad = _per_row((~np.isfinite(flat)).astype(np.float64), parents, len(nulls))
    return _masked(bad == 0, nulls, pa.bool_())


def norm(t: pa.Table, **_: Any) -> pa.Array:
    """L2 norm of ``embedding``."""
    flat, parents, nulls = _list_values(t.column("embedding"))
    return _masked(np.sqrt(_per_row(flat * flat, parents, len(nulls))), nulls, pa.float64())


DERIVED: dict[str, Callable[..., pa.Array]] = {
    f.__name__: f
    for f in (
        occurred_date,
        rating_value,
        genre_affinity_sum,
        genre_affinity_length,
        genre_vector_length,
        genre_vector_non_binary,
        dim,
        all_finite,
        norm,
    )
}


# -------------------------------------------------------------------------- views
def rows_view(table: TableLike, derived: Sequence[str] = (), **options: Any) -> pd.DataFrame:
    """One row per table row, plus the named ``DERIVED`` columns; list columns are dropped."""
    t = _to_arrow(table)
    for name in derived:
        t = t.append_column(name, DERIVED[name](t, **options))
    keep = [f.name for f in t.schema if not (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))]
    return t.select(keep).to_pandas()


LIST_KEYS = ["model_version", "user_id"]


def per_user_lists_view(table: TableLike, **_: Any) -> pd.DataFrame:
    """One row per (model_version, user_id) list of a long-format recommendation table.

    Columns: ``list_length``, ``duplicate_items``, ``duplicate_ranks``,
    ``ranks_contiguous`` (ranks are exactly 1..list_length) and ``scores_sorted`` (the
    score never increases with rank). Null model versions are kept as their own group.
    """
    df = _to_arrow(table).select([*LIST_KEYS, "rank", "item_id", "score"]).to_pandas()
    df = df.sort_values([*LIST_KEYS, "rank"], kind="stable", na_position="last")
    df["score_increase"] = df.groupby(LIST_KEYS, dropna=False, sort=False)["score"].diff().gt(0)
    out = df.groupby(LIST_KEYS, dropna=False, sort=True).agg(
        list_length=("rank", "size"),
        distinct_items=("item_id", "nunique"),
        distinct_ranks=("rank", "nunique"),
        min_rank=("rank", "min"),
        max_rank=("rank", "max"),
        score_increases=("score_increase", "sum"),
    )
    out["duplicate_items"] = out["list_length"] - out["distinct_items"]
    out["duplicate_ranks"] = out["list_length"] - out["distinct_ranks"]
    out["ranks_contiguous"] = (out["min_rank"] == 1) & (out["max_rank"] == out["list_length"]) & (out["duplicate_ranks"] == 0)
    out["scores_sorted"] = out["score_increases"] == 0
    return out.drop(columns=["distinct_items", "distinct_ranks", "score_increases"]).reset_index()


def embedding_stats_view(table: TableLike, **_: Any) -> pd.DataFrame:
    """One row per embedding with ``dim``, ``all_finite`` and ``norm`` (the vector itself dropped)."""
    return rows_view(table, derived=("dim", "all_finite", "norm"))


VIEWS: dict[str, Callable[..., pd.DataFrame]] = {
    "rows": rows_view,
    "per_user_lists": per_user_lists_view,
    "embedding_stats": embedding_stats_view,
}


def prepare(suite_name: str, table: TableLike) -> pd.DataFrame:
    """The frame a suite validates: its ``view`` applied to ``table``."""
    meta = suite_meta(suite_name)
    return VIEWS[meta.get("view", "rows")](table, **meta.get("view_options", {}))


# ---------------------------------------------------------------------- validation
_GX_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    """One offline, ephemeral GX context per process with a whole-dataframe pandas batch."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("recsys_lakehouse").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def suite_parameters(suite_name: str, **params: Any) -> dict[str, Any]:
    """The suite's meta ``parameters`` overridden by ``params`` (references resolved)."""
    defaults = suite_meta(suite_name).get("parameters", {})
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"suite {suite_name!r} has no parameters {sorted(unknown)} (known: {sorted(defaults)})")
    merged = {**defaults, **{k: v for k, v in params.items() if v is not None}}
    for key, value in merged.items():
        if isinstance(value, Mapping) and "$PARAMETER" in value:
            merged[key] = merged[value["$PARAMETER"]]
    return merged


def validate(suite_name: str, table: TableLike, **params: Any) -> "ExpectationSuiteValidationResult":
    """Validate ``table`` (after the suite's view) against the suite; ``params`` set its $PARAMETERs."""
    meta = suite_meta(suite_name)
    frame = prepare(suite_name, table)
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": SAMPLE_SIZE,
        "unexpected_index_column_names": [c for c in meta.get("row_id_columns", []) if c in frame.columns],
        "return_unexpected_index_query": False,
    }
    suite = load_suite(suite_name)
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite, result_format=result_format, expectation_parameters=suite_parameters(suite_name, **params))


# ------------------------------------------------------------------- check results


def expectation_column(kwargs: Mapping[str, Any]) -> str | None:
    """The column(s) an expectation is about, as one string (None for table-level ones)."""
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return None


def expectation_label(type_: str, column: str | None) -> str:
    return f"{type_}({column})" if column else type_


def expectation_summary(res: Any) -> dict[str, Any]:
    """One expectation's outcome: type, column, success, observed value, unexpected counts/samples."""
    config = res.expectation_config
    kwargs = dict(config.kwargs)
    column = expectation_column(kwargs)
    result = dict(res.result or {})
    exception = res.exception_info or {}
    if isinstance(exception, Mapping) and "raised_exception" not in exception:  # keyed by metric
        exception = next(iter(exception.values()), {})
    bounds = {k: kwargs[k] for k in ("min_value", "max_value", "value_set", "strict_min", "strict_max") if k in kwargs}
    return jsonable(
        {
            "expectation": expectation_label(config.type, column),
            "type": config.type,
            "column": column,
            "success": bool(res.success),
            "kwargs": bounds,
            "observed_value": result.get("observed_value"),
            "element_count": result.get("element_count"),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
            "unexpected_values_sample": result.get("partial_unexpected_list", [])[:SAMPLE_SIZE],
            "unexpected_rows_sample": result.get("partial_unexpected_index_list", [])[:SAMPLE_SIZE],
            "exception": exception.get("exception_message") if exception.get("raised_exception") else None,
        }
    )


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| ok | expectation | observed | unexpected |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["success"]):
        unexpected = "" if r["unexpected_count"] is None else f"{r['unexpected_count']} ({(r['unexpected_percent'] or 0):.2f}%)"
        observed = "" if r["observed_value"] is None else json.dumps(r["observed_value"])[:60]
        lines.append(f"| {'✅' if r['success'] else '❌'} | `{r['expectation']}` | {observed} | {unexpected} |")
    return "\n".join(lines)


def check_name(suite_name: str) -> str:
    return suite_meta(suite_name).get("check_name") or f"gx_{suite_name}"


def severity(suite_name: str) -> dg.AssetCheckSeverity:
    level = str(suite_meta(suite_name).get("severity", "error")).lower()
    return dg.AssetCheckSeverity.WARN if level.startswith("warn") else dg.AssetCheckSeverity.ERROR


def check_result(
    asset_key: dg.AssetKey | str,
    suite_name: str,
    result: "ExpectationSuiteValidationResult",
    extra_metadata: Mapping[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """A Dagster check result from a GX suite result: passed iff every expectation succeeded."""
    rows = [expectation_summary(r) for r in result.results]
    failed = [r["expectation"] for r in rows if not r["success"]]
    stats = result.statistics
    element_counts = [r["element_count"] for r in rows if r["element_count"] is not None]
    metadata: dict[str, Any] = {
        "suite": suite_name,
        "success_percent": float(stats.get("success_percent") or 0.0),
        "evaluated_expectations": int(stats.get("evaluated_expectations", len(rows))),
        "unsuccessful_expectations": len(failed),
        "failed_expectations": dg.MetadataValue.json(failed),
        "expectations": dg.MetadataValue.json(rows),
        "summary": dg.MetadataValue.md(_markdown(rows)),
        "rows_validated": max(element_counts, default=0),
        **(extra_metadata or {}),
    }
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey.from_coercible(asset_key),
        check_name=check_name(suite_name),
        passed=not failed,
        severity=severity(suite_name),
        metadata=metadata,
        description=f"GX suite {suite_name}: {len(rows) - len(failed)}/{len(rows)} expectations passed",
    )


# ------------------------------------------------------------------- Dagster checks
class GxCheckConfig(dg.Config):
    """Run-time options of a GX asset check."""

    model_version: str | None = Field(
        default=None,
        description="Tables with a model_version column (user_recommendations): the version to validate. Default: the newest present.",
    )
    parameters: dict[str, float] = Field(
        default_factory=dict,
        description="Overrides of the suite's meta parameters, e.g. {'k': 20, 'min_list_length': 1} or {'dim': 32}.",
    )




def newest_model_version(lakehouse: LakehouseResource, table: str, column: str = "model_version") -> str | None:
    """The model version with the latest ``generated_at`` in ``table``."""
    versions = lakehouse.read(table, columns=[column, "generated_at"])
    if versions.num_rows == 0:
        return None
    latest = versions.group_by(column).aggregate([("generated_at", "max")]).sort_by([("generated_at_max", "descending")])
    return latest.column(column)[0].as_py()


def _registry_embedding_dim(lakehouse: LakehouseResource, versions: list[str]) -> int | None:
    """``embedding_dim`` of a model version from the ``model_versions`` registry, if recorded."""
    if len(versions) != 1 or not lakehouse.exists("model_versions"):
        return None
    rows = lakehouse.read("model_versions", columns=["config"], filters=[("model_version", "=", versions[0])])
    for config in rows.column("config").to_pylist():
        value = json.loads(config or "{}").get("embedding_dim")
        if value:
            return int(value)
    return None


def read_for_check(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, suite_name: str, config: GxCheckConfig
) -> tuple[pa.Table, dict[str, Any]]:
    """The rows a check validates and metadata saying which: the run's days, one model version, or all."""
    meta = suite_meta(suite_name)
    name = meta["asset"]
    info: dict[str, Any] = {"table_uri": dg.MetadataValue.path(lakehouse.table_uri(name)), "delta_version": lakehouse.version(name)}
    days = run_day_range(context) if meta.get("partition_column") else None
    version_column = meta.get("model_version_column")
    if days:
        info["partition_range"] = f"{days[0].isoformat()}..{days[1].isoformat()}"
        table = lakehouse.read_range(name, days[0], days[1], column=meta["partition_column"])
    elif version_column:
        version = config.model_version or newest_model_version(lakehouse, name, version_column)
        info["model_version"] = version or ""
        table = lakehouse.read(name, filters=[(version_column, "=", version)]) if version else lakehouse.schema(name).empty_table()
    else:
        table = lakehouse.read(name)
    info["rows_read"] = table.num_rows
    return table, info


def _runtime_parameters(suite_name: str, lakehouse: LakehouseResource, table: pa.Table, config: GxCheckConfig) -> dict[str, Any]:
    params: dict[str, Any] = {k: int(v) if float(v).is_integer() else v for k, v in config.parameters.items()}
    if "dim" in suite_meta(suite_name).get("parameters", {}) and "dim" not in params and "model_version" in table.column_names:
        params["dim"] = _registry_embedding_dim(lakehouse, pc.unique(table.column("model_version")).drop_null().to_pylist())
    return params


def gx_asset_check(
    suite_name: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    blocking: bool | None = None,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """A Dagster asset check running the GX suite ``suite_name`` on its asset's Delta table.

    Day-partitioned suites (meta ``partition_column``) need the asset's ``partitions_def``
    to read only the run's days; without one they validate the whole table. Suites with a
    ``model_version_column`` validate one version (config, default the newest); others the
    whole table. ``blocking`` and the description default to the suite meta's.
    """
    meta = suite_meta(suite_name)
    partitioned = bool(meta.get("partition_column")) and partitions_def is not None
    if meta.get("model_version_column"):
        scope = "one model version (config `model_version`, default the newest)"
    else:
        scope = f"the run's `{meta['partition_column']}` days" if partitioned else "the whole table"
    n = len(suite_dict(suite_name).get("expectations", []))
    text = description or meta.get("description") or f"Great Expectations suite {suite_name}."
    text = f"{text}\n\nGX suite `expectations/{suite_name}.json` ({n} expectations) on {scope}; severity {severity(suite_name).value}."
    is_blocking = bool(meta.get("blocking", True)) if blocking is None else blocking
    with warnings.catch_warnings():  # partitioned check specs are a preview API, used deliberately
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build_check(suite_name, meta["asset"], text, is_blocking, partitions_def if partitioned else None)


def _build_check(
    suite_name: str, asset: str, description: str, blocking: bool, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=check_name(suite_name),
        description=description,
        blocking=blocking,
        partitions_def=partitions_def,
        metadata={"suite": suite_name, "view": suite_meta(suite_name).get("view", "rows")},
    )
    def _check(context: dg.AssetCheckExecutionContext, config: GxCheckConfig, lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        if not lakehouse.exists(asset):
            return dg.AssetCheckResult(
                passed=False,
                severity=severity(suite_name),
                metadata={"table_uri": dg.MetadataValue.path(lakehouse.table_uri(asset))},
                description=f"table {asset} does not exist",
            )
        table, info = read_for_check(context, lakehouse, suite_name, config)
        params = _runtime_parameters(suite_name, lakehouse, table, config)
        result = validate(suite_name, table, **params)
        info["parameters"] = dg.MetadataValue.json(jsonable(suite_parameters(suite_name, **params)))
        return check_result(asset, suite_name, result, info)

    return _check


def all_gx_checks(partitions_def: dg.PartitionsDefinition | None) -> list[dg.AssetChecksDefinition]:
    """The five GX checks; the day-partitioned ones get ``partitions_def`` (the assets' daily partitions)."""
    return [gx_asset_check(name, partitions_def=partitions_def) for name in SUITE_NAMES]
