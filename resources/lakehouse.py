"""The lakehouse: one Delta table per asset under a root URI (local folder or S3 prefix).

Assets write Delta themselves through this resource and return ``MaterializeResult``
(see ARCHITECTURE.md for why there is no IO manager). Partition overwrites use a
predicate, so a re-run replaces exactly its days in one atomic commit.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, write_deltalake
from pydantic import Field, PrivateAttr

from recsys_assets import settings

ArrowData = pa.Table | pa.RecordBatchReader


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _strip_file_scheme(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def join_uri(root: str, *parts: str) -> str:
    root = _strip_file_scheme(root)
    if is_remote(root):
        return posixpath.join(root.rstrip("/"), *parts)
    return str(Path(root, *parts))


def day_predicate(column: str, start: dt.date, end: dt.date) -> str:
    """SQL predicate selecting the closed day range [start, end] of a date column."""
    return f"{column} >= '{start.isoformat()}' AND {column} <= '{end.isoformat()}'"


STAGING_TAG = "recsys/staging"
STAGING_DIR = "_staging"


def typed_partition_values(values: set[str], arrow_type: pa.DataType) -> list[Any]:
    """Partition values (strings in the Delta log) as Python values of the column's type."""
    if pa.types.is_date(arrow_type):
        return sorted(dt.date.fromisoformat(v) for v in values)
    if pa.types.is_integer(arrow_type):
        return sorted(int(v) for v in values)
    return sorted(values)


def quote_sql(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class LakehouseResource(dg.ConfigurableResource):
    """Delta tables and versioned artifacts under one root URI.

    ``root_uri`` is a local folder by default (``$RECSYS_HOME/lakehouse``) and
    ``s3://bucket/prefix`` in production; S3 credentials and endpoint come from the
    ``AWS_*`` environment variables unless ``storage_options`` is given.

    **Staging.** In a run tagged ``recsys/staging=<backfill id>`` (or with ``staging``
    set) every write goes to ``_staging/<id>/<table>`` instead of the live table, and
    reads see the staged partitions over the live ones: the staged rows of a partition
    replace the live rows of that partition, everything else reads live. Production
    keeps reading the live tables until the backfill is validated and cut over.
    """

    root_uri: str = Field(default_factory=settings.lakehouse_uri, description="Lakehouse root: folder or s3://bucket/prefix")
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="deltalake/object_store options (AWS_ENDPOINT_URL, AWS_REGION, ...). Empty: taken from AWS_* env vars for s3:// roots.",
    )
    staging: str | None = Field(default=None, description="Backfill id whose staging namespace this resource writes to (normally from the run tag recsys/staging)")
    _run_staging: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if run is not None and run.tags.get(STAGING_TAG):
            self._run_staging = run.tags[STAGING_TAG]

    # ------------------------------------------------------------------ paths
    @property
    def staging_id(self) -> str | None:
        return self.staging or self._run_staging

    def _options(self) -> dict[str, str] | None:
        if not is_remote(self.root_uri):
            return None
        return dict(self.storage_options) or settings.s3_storage_options_from_env()

    def live_uri(self, name: str) -> str:
        return join_uri(self.root_uri, name)

    def staging_uri(self, name: str, staging_id: str | None = None) -> str:
        backfill = staging_id or self.staging_id
        if not backfill:
            raise ValueError("no staging namespace: not a staging run")
        return join_uri(self.root_uri, STAGING_DIR, backfill, name)

    def table_uri(self, name: str) -> str:
        """Where writes of ``name`` go: the live table, or its staging copy in a staging run."""
        return self.staging_uri(name) if self.staging_id else self.live_uri(name)

    def artifact_uri(self, *parts: str) -> str:
        return join_uri(self.root_uri, "artifacts", *parts)

    def delta_at(self, uri: str, version: int | None = None) -> DeltaTable:
        return DeltaTable(uri, version=version, storage_options=self._options())

    def is_table(self, uri: str) -> bool:
        return DeltaTable.is_deltatable(uri, storage_options=self._options())

    # ---------------------------------------------------------- staged reads
    def _staged(self, name: str) -> tuple[DeltaTable, str | None, list[Any]] | None:
        """(staging table, partition column, staged values) when this run stages ``name``."""
        if not self.staging_id:
            return None
        uri = self.staging_uri(name)
        if not self.is_table(uri):
            return None
        table = self.delta_at(uri)
        columns = table.metadata().partition_columns
        if not columns:
            return table, None, []
        column = columns[0]
        values = {str(p[column]) for p in table.partitions()}
        arrow_type = pa.schema(table.schema().to_arrow()).field(column).type
        return table, column, typed_partition_values(values, arrow_type)

    def _live(self, name: str) -> DeltaTable | None:
        uri = self.live_uri(name)
        return self.delta_at(uri) if self.is_table(uri) else None

    # ----------------------------------------------------------------- tables
    def exists(self, name: str) -> bool:
        return self._staged(name) is not None or self.is_table(self.live_uri(name))

    def delta_table(self, name: str, version: int | None = None) -> DeltaTable:
        """The Delta table at the write location (staging copy in a staging run)."""
        return self.delta_at(self.table_uri(name), version)

    def version(self, name: str) -> int | None:
        uri = self.table_uri(name)
        return self.delta_at(uri).version() if self.is_table(uri) else None

    def file_segments(self, name: str, predicate: str | None = None) -> list[tuple[str, list[str]]]:
        """``(table root, data files)`` making up the current snapshot as this run sees it.

        One segment for a live table; in a staging run the staged partitions come from the
        staging copy and all other partitions from the live table.
        """
        staged = self._staged(name)
        live = self._live(name)

        def files(table: DeltaTable, pred: str | None) -> list[str]:
            return table.file_uris(file_pruning_predicate=pred) if pred else table.file_uris()

        if staged is None:
            if live is None:
                raise FileNotFoundError(f"lakehouse table {name!r} does not exist at {self.live_uri(name)}")
            return [(self.live_uri(name), files(live, predicate))]
        table, column, values = staged
        segments = [(self.staging_uri(name), files(table, predicate))]
        if live is not None and column is not None:
            excluded = f"{column} NOT IN ({', '.join(quote_sql(v) for v in values)})"
            segments.append((self.live_uri(name), files(live, f"({predicate}) AND {excluded}" if predicate else excluded)))
        return segments

    def file_uris(self, name: str, predicate: str | None = None) -> list[str]:
        """Data files of the current snapshot, optionally pruned by a partition predicate."""
        return [f for _, fs in self.file_segments(name, predicate) for f in fs]

    def schema(self, name: str) -> pa.Schema:
        live = self._live(name)
        table = live if live is not None else self.delta_table(name)
        return pa.schema(table.schema().to_arrow())

    def read(self, name: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
        """The current snapshot of a table (optionally a column subset / filter)."""
        staged = self._staged(name)
        if staged is None:
            live = self._live(name)
            if live is None:
                raise FileNotFoundError(f"lakehouse table {name!r} does not exist at {self.live_uri(name)}")
            return live.to_pyarrow_table(columns=columns, filters=filters)
        table, column, values = staged
        staged_rows = table.to_pyarrow_table(columns=columns, filters=filters)
        live = self._live(name)
        if live is None or column is None:
            return staged_rows
        live_rows = live.to_pyarrow_table(columns=columns, filters=[*(filters or []), (column, "not in", values)])
        return pa.concat_tables([staged_rows, live_rows.cast(staged_rows.schema)])

    def read_range(
        self,
        name: str,
        start: dt.date,
        end: dt.date,
        column: str = "event_date",
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Rows of the closed day range [start, end] from the current snapshot."""
        filters = [(column, ">=", start), (column, "<=", end)]
        return self.read(name, columns=columns, filters=filters)

    def _write(
        self,
        name: str,
        data: ArrowData,
        *,
        mode: str,
        predicate: str | None = None,
        partition_by: list[str] | None = None,
        schema_mode: str | None = None,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        uri = self.table_uri(name)
        exists = self.is_table(uri)
        write_deltalake(
            uri,
            data,
            mode=mode,  # type: ignore[arg-type]
            predicate=predicate if exists else None,
            partition_by=partition_by,
            schema_mode=schema_mode,  # type: ignore[arg-type]
            storage_options=self._options(),
            commit_properties=CommitProperties(custom_metadata={k: str(v) for k, v in (commit_metadata or {}).items()}),
        )
        return self.delta_at(uri).version()

    def overwrite_range(
        self,
        name: str,
        data: ArrowData,
        start: dt.date,
        end: dt.date,
        column: str = "event_date",
        partition_by: list[str] | None = None,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Replace exactly the days [start, end] with ``data`` in one atomic commit.

        Every row must fall inside the range (deltalake refuses the commit otherwise);
        days of the range absent from ``data`` end up empty. Returns the new version.
        """
        return self._write(
            name,
            data,
            mode="overwrite",
            predicate=day_predicate(column, start, end),
            partition_by=partition_by if partition_by is not None else [column],
            commit_metadata=commit_metadata,
        )

    def overwrite_partitions(
        self, name: str, data: ArrowData, column: str, values: list[Any], commit_metadata: Mapping[str, str] | None = None
    ) -> int:
        """Replace exactly the partitions ``column IN values`` with ``data`` in one commit."""
        predicate = f"{column} IN ({', '.join(quote_sql(v) for v in values)})"
        return self._write(name, data, mode="overwrite", predicate=predicate, partition_by=[column], commit_metadata=commit_metadata)

    def overwrite_where(
        self,
        name: str,
        data: ArrowData,
        column: str,
        value: str,
        partition_by: list[str] | None = None,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Replace the rows whose ``column`` equals ``value`` (e.g. one model version) atomically."""
        quoted = value.replace("'", "''")
        return self._write(
            name,
            data,
            mode="overwrite",
            predicate=f"{column} = '{quoted}'",
            partition_by=partition_by if partition_by is not None else [column],
            commit_metadata=commit_metadata,
        )

    def overwrite(self, name: str, data: ArrowData, commit_metadata: Mapping[str, str] | None = None) -> int:
        """Replace the whole table (schema included) in one commit."""
        return self._write(name, data, mode="overwrite", schema_mode="overwrite", commit_metadata=commit_metadata)

    def append(
        self,
        name: str,
        data: ArrowData,
        partition_by: list[str] | None = None,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> int:
        return self._write(name, data, mode="append", partition_by=partition_by, commit_metadata=commit_metadata)

    def delete(self, name: str, predicate: str) -> int:
        table = self.delta_table(name)
        table.delete(predicate)
        return table.version()

    # -------------------------------------------------------------- artifacts
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root path inside it, for artifact files."""
        root = _strip_file_scheme(self.root_uri)
        if not is_remote(root):
            return pafs.LocalFileSystem(), str(Path(root).resolve())
        if not root.startswith("s3://"):
            raise ValueError(f"unsupported lakehouse scheme in {root!r} (expected a folder or s3://)")
        opts = self._options() or {}
        endpoint = opts.get("AWS_ENDPOINT_URL")
        kwargs: dict[str, Any] = {
            "access_key": opts.get("AWS_ACCESS_KEY_ID"),
            "secret_key": opts.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": opts.get("AWS_SESSION_TOKEN"),
            "region": opts.get("AWS_REGION"),
        }
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host, scheme=scheme)
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), root[len("s3://") :].rstrip("/")

    def write_artifact(self, relative_path: str, data: bytes) -> str:
        fs, root = self.filesystem()
        path = posixpath.join(root, "artifacts", relative_path)
        fs.create_dir(posixpath.dirname(path), recursive=True)
        with fs.open_output_stream(path) as out:
            out.write(data)
        return self.artifact_uri(*relative_path.split("/"))

    def read_artifact(self, relative_path: str) -> bytes:
        fs, root = self.filesystem()
        with fs.open_input_stream(posixpath.join(root, "artifacts", relative_path)) as src:
            return src.read()

    def artifact_exists(self, relative_path: str) -> bool:
        fs, root = self.filesystem()
        info = fs.get_file_info(posixpath.join(root, "artifacts", relative_path))
        return info.type != pafs.FileType.NotFound

    def write_json_artifact(self, relative_path: str, payload: Any) -> str:
        return self.write_artifact(relative_path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def read_json_artifact(self, relative_path: str) -> Any:
        return json.loads(self.read_artifact(relative_path))


def table_metadata(lakehouse: LakehouseResource, name: str, version: int | None = None) -> dict[str, Any]:
    """The metadata every materialization shows: table URI and Delta version."""
    return {
        "table_uri": dg.MetadataValue.path(lakehouse.table_uri(name)),
        "delta_version": version if version is not None else lakehouse.version(name),
    }


def concat_tables(tables: Iterable[pa.Table], schema: pa.Schema) -> pa.Table:
    parts = [t.select(schema.names).cast(schema) for t in tables if t.num_rows]
    return pa.concat_tables(parts) if parts else schema.empty_table()
