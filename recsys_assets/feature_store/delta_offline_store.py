"""Feast offline store that reads the *current* snapshot of Delta Lake tables.

Why it exists
-------------
Feast's ``file`` (dask) offline store silently drops entity rows outside the TTL and
rows sharing a key and timestamp (feast#6787), and it reads a Delta table's parquet
files without its log, so it returns stale rows after a partition overwrite. Feast's
``duckdb`` store gets the joins right, but reads Delta through DuckDB's ``delta``
extension, which has to be downloaded at run time (not possible here).

``DeltaDuckDBOfflineStore`` is the ``duckdb`` store with one change: a ``FileSource``
whose ``file_format`` is ``DeltaFormat()`` is read with the ``deltalake`` package
(``DeltaTable(uri).to_pyarrow_dataset()``: the current version of the log, never
files an overwrite removed) and handed to Feast's own ibis helpers
(``feast.infra.offline_stores.ibis``) as an in-memory ibis table, executed by
DuckDB. Every other source (Parquet, ...) is read exactly as the parent reads it.

What is pushed down into the Delta scan
---------------------------------------
* Columns: join keys, event and created timestamps and the features (for
  ``get_historical_features`` all features of the view, so on-demand views still
  find their inputs); names as in the source, i.e. before ``field_mapping``. Other
  columns (e.g. the ``event_date`` partition column) are never read.
* Time range on the source's ``timestamp_field``:
  - ``pull_latest_from_table_or_query`` / ``pull_all_from_table_or_query``
    (``materialize``): ``start_date <= ts <= end_date`` (each bound if given);
  - ``get_historical_features``: ``ts <= max(entity timestamp)`` and, when every
    feature view over the source has a TTL, ``ts >= min(entity timestamp) - TTL``
    (rows outside that range cannot take part in the point-in-time join).
  The range is applied twice: as a Delta *file pruning predicate* (files whose
  partition values or per-file min/max statistics in the Delta log rule the range
  out are never opened, so a table partitioned by event date skips whole partitions)
  and as an exact pyarrow row filter (parquet row groups are skipped by their
  statistics). Feast still applies its own filters on top, so pushdown only ever
  removes rows that could not be in the result.

Timestamps come out as ``timestamp[us, tz=UTC]`` (naive ones are taken to be UTC,
nanoseconds are truncated): DuckDB 2.x materialization breaks on nanosecond columns.

Use it from ``feature_store.yaml``::

    offline_store:
      type: recsys_assets.feature_store.delta_offline_store.DeltaDuckDBOfflineStore

or in Python: ``RepoConfig(..., offline_store=DeltaDuckDBOfflineStoreConfig())``.
Feast resolves ``<module>.<Class>`` to the config class ``<module>.<Class>Config``,
and goes back from the config object to the store by dropping ``Config``; so both
classes must live in this module under these names.

Limits: the scan result is held in memory (after pruning); Delta tables with
deletion vectors or column mapping are refused by ``deltalake``'s pyarrow reader;
``compute_monitoring_metrics`` is inherited and still uses DuckDB's ``delta_scan``.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional, Union
from urllib.parse import urlparse

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from ibis.expr.types import Table
from pydantic import StrictStr

from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import (
    DuckDBOfflineStore,
    DuckDBOfflineStoreConfig,
    _read_data_source,
    _write_data_source,
)
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.ibis import (
    get_historical_features_ibis,
    pull_all_from_table_or_query_ibis,
    pull_latest_from_table_or_query_ibis,
)
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig
from recsys_assets.settings import s3_storage_options_from_env

__all__ = [
    "DeltaDuckDBOfflineStore",
    "DeltaDuckDBOfflineStoreConfig",
    "OFFLINE_STORE_TYPE",
    "delta_dataset",
    "delta_reader",
    "normalize_timestamps",
    "read_delta_snapshot",
    "storage_options",
]

OFFLINE_STORE_TYPE = f"{__name__}.DeltaDuckDBOfflineStore"

TimeRange = tuple[Optional[datetime], Optional[datetime]]
Reader = Callable[[DataSource, str], Table]


class DeltaDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """Config of :class:`DeltaDuckDBOfflineStore` (same options as ``duckdb``)."""

    type: StrictStr = OFFLINE_STORE_TYPE


# --------------------------------------------------------------------- Delta reads
def is_delta_source(source: DataSource) -> bool:
    return isinstance(source, FileSource) and isinstance(source.file_format, DeltaFormat)


def table_uri(source: FileSource, repo_path: Optional[str]) -> str:
    """The source's URI; a plain relative path is taken relative to the Feast repo."""
    uri = source.path
    if urlparse(uri).scheme:  # s3://, gs://, file://, ...: deltalake handles these
        return uri
    return FileSource.get_uri_for_file_path(repo_path=repo_path, uri=uri)


def storage_options(source: FileSource, uri: str) -> dict[str, str]:
    """deltalake storage options: AWS_* variables (+ connection_ref, endpoint override) for S3."""
    if urlparse(uri).scheme not in {"s3", "s3a"}:
        return {}
    options = s3_storage_options_from_env()
    creds = source.resolve_credentials() or {}
    options.update({k: v for k, v in creds.items() if k.startswith("AWS_") and v})
    if source.s3_endpoint_override:
        options["AWS_ENDPOINT_URL"] = source.s3_endpoint_override
    return options


def _bound(value: datetime, ts_type: pa.TimestampType) -> pa.Scalar:
    """``value`` as a scalar of the column's type (naive datetimes mean UTC)."""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if ts_type.tz is None:  # timestamp_ntz column: compare as naive UTC
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return pa.scalar(value, type=pa.timestamp("us", tz=ts_type.tz)).cast(ts_type)


def _time_filter(
    schema: pa.Schema, timestamp_field: Optional[str], time_range: TimeRange
) -> tuple[Optional[list[tuple]], Optional[pads.Expression]]:
    """(file pruning predicate, exact row filter) for ``start <= ts <= end``."""
    start, end = time_range
    if not timestamp_field or timestamp_field not in schema.names or (start is None and end is None):
        return None, None
    ts_type = schema.field(timestamp_field).type
    if not pa.types.is_timestamp(ts_type):
        return None, None
    pruning: list[tuple] = []
    row_filter: Optional[pads.Expression] = None
    for op, value in ((">=", start), ("<=", end)):
        if value is None:
            continue
        scalar = _bound(value, ts_type)
        pruning.append((timestamp_field, op, scalar.as_py()))
        field = pc.field(timestamp_field)
        cond = field >= scalar if op == ">=" else field <= scalar
        row_filter = cond if row_filter is None else row_filter & cond
    return pruning, row_filter


def delta_dataset(
    source: FileSource,
    repo_path: Optional[str] = None,
    *,
    timestamp_field: Optional[str] = None,
    time_range: TimeRange = (None, None),
) -> tuple[pads.Dataset, Optional[pads.Expression]]:
    """The current Delta snapshot as a pyarrow dataset, files pruned to ``time_range``.

    Returns the dataset and the exact row filter still to apply when scanning it.
    """
    from deltalake import DeltaTable

    uri = table_uri(source, repo_path)
    dt = DeltaTable(uri, storage_options=storage_options(source, uri) or None)
    schema = pa.schema(dt.schema().to_arrow())
    pruning, row_filter = _time_filter(schema, timestamp_field, time_range)
    return dt.to_pyarrow_dataset(file_pruning_predicate=pruning), row_filter


def normalize_timestamps(table: pa.Table) -> pa.Table:
    """Every timestamp column as ``timestamp[us, tz=UTC]`` (naive = UTC, ns truncated)."""
    target = pa.timestamp("us", tz="UTC")
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type != target:
            column = table.column(i)
            if field.type.unit != "us":
                column = pc.cast(column, pa.timestamp("us", tz=field.type.tz), safe=False)
            column = column.cast(target)  # naive -> UTC and tz change: metadata only
            table = table.set_column(i, field.with_type(target), column)
    return table


def read_delta_snapshot(
    source: FileSource,
    repo_path: Optional[str] = None,
    *,
    columns: Optional[Iterable[str]] = None,
    timestamp_field: Optional[str] = None,
    time_range: TimeRange = (None, None),
) -> pa.Table:
    """Read the current snapshot of a Delta ``FileSource`` with the scan pushdowns above.

    ``columns`` (source names) not present in the table are ignored here, so Feast
    reports a missing column the same way as for any other source.
    """
    dataset, row_filter = delta_dataset(
        source, repo_path, timestamp_field=timestamp_field, time_range=time_range
    )
    if columns is not None:
        wanted = set(columns)
        columns = [name for name in dataset.schema.names if name in wanted]
    return normalize_timestamps(dataset.to_table(columns=columns, filter=row_filter))


def _source_columns(source: DataSource, names: Iterable[str]) -> set[str]:
    """Source column names for Feast names (undoing the source's ``field_mapping``)."""
    to_source = {feast_name: col for col, feast_name in source.field_mapping.items()}
    return {to_source.get(name, name) for name in names if name}


def delta_reader(scans: Optional[dict[str, dict]] = None) -> Reader:
    """A ``data_source_reader`` for Feast's ibis helpers.

    ``scans`` maps a Delta source's path to keyword arguments of
    :func:`read_delta_snapshot` (columns, timestamp_field, time_range); a Delta
    source without an entry is read whole. Non-Delta sources go to the parent reader.
    """

    def read(data_source: DataSource, repo_path: str) -> Table:
        if not is_delta_source(data_source):
            return _read_data_source(data_source, repo_path)
        assert isinstance(data_source, FileSource)
        kwargs = (scans or {}).get(data_source.path, {})
        return ibis.memtable(read_delta_snapshot(data_source, repo_path, **kwargs))

    return read


def _entity_time_range(entity_df: Union[pd.DataFrame, str]) -> TimeRange:
    if not isinstance(entity_df, pd.DataFrame) or entity_df.empty:
        return None, None
    ts_col = offline_utils.infer_event_timestamp_from_entity_df(
        dict(zip(entity_df.columns, entity_df.dtypes))
    )
    ts = pd.to_datetime(entity_df[ts_col], utc=True)
    return ts.min().to_pydatetime(), ts.max().to_pydatetime()


def _historical_scans(
    feature_views: list[FeatureView], entity_df: Union[pd.DataFrame, str]
) -> dict[str, dict]:
    """Per Delta source: the columns and time range a point-in-time join can use."""
    min_ts, max_ts = _entity_time_range(entity_df)
    scans: dict[str, dict] = {}
    for fv in feature_views:
        source = fv.batch_source
        if not isinstance(source, FileSource) or not is_delta_source(source):
            continue
        ttl = fv.ttl if fv.ttl and fv.ttl > timedelta(0) else None
        start = min_ts - ttl if (min_ts is not None and ttl) else None
        names = [source.timestamp_field, source.created_timestamp_column]
        names += [e.name for e in fv.entity_columns] + [f.name for f in fv.features]
        scan = scans.setdefault(
            source.path,
            {"columns": set(), "timestamp_field": source.timestamp_field, "time_range": (start, max_ts)},
        )
        scan["columns"] |= _source_columns(source, names)
        old_start, old_end = scan["time_range"]  # union of the feature views' ranges
        scan["time_range"] = (
            None if old_start is None or start is None else min(old_start, start),
            old_end,
        )
    return scans


def _pull_scans(
    data_source: DataSource,
    columns: list[Optional[str]],
    timestamp_field: str,
    start_date: Optional[datetime],
    end_date: Optional[datetime],
) -> dict[str, dict]:
    if not is_delta_source(data_source):
        return {}
    assert isinstance(data_source, FileSource)
    return {
        data_source.path: {
            "columns": [c for c in columns if c],
            "timestamp_field": timestamp_field,
            "time_range": (start_date, end_date),
        }
    }


# --------------------------------------------------------------------------- store
class DeltaDuckDBOfflineStore(DuckDBOfflineStore):
    """Feast's DuckDB offline store, reading Delta sources' current snapshot via ``deltalake``."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: Union[pd.DataFrame, str],
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=delta_reader(_historical_scans(feature_views, entity_df)),
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            filter_by_created_timestamp=filter_by_created_timestamp,
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: Optional[str],
        start_date: datetime,
        end_date: datetime,
    ) -> RetrievalJob:
        columns = join_key_columns + feature_name_columns + [timestamp_field, created_timestamp_column]
        return pull_latest_from_table_or_query_ibis(
            config=config,
            data_source=data_source,
            join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            start_date=start_date,
            end_date=end_date,
            data_source_reader=delta_reader(
                _pull_scans(data_source, columns, timestamp_field, start_date, end_date)
            ),
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: Optional[str] = None,
        start_date: Optional[datetime] = None,
        end_date: Optional[datetime] = None,
    ) -> RetrievalJob:
        columns = join_key_columns + feature_name_columns + [timestamp_field, created_timestamp_column]
        return pull_all_from_table_or_query_ibis(
            config=config,
            data_source=data_source,
            join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            start_date=start_date,
            end_date=end_date,
            data_source_reader=delta_reader(
                _pull_scans(data_source, columns, timestamp_field, start_date, end_date)
            ),
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
        )


@atexit.register
def _release_ibis_duckdb() -> None:
    """Close ibis' default DuckDB connection at interpreter exit (it holds the memtables).

    Otherwise duckdb 2.0's nanobind bindings print "leaked instance" noise at exit.
    """
    backend = ibis.options.default_backend
    if backend is not None:
        try:
            backend.disconnect()
        except Exception:  # exit must not fail over a connection already gone
            pass
        ibis.options.default_backend = None
    gc.collect()
