"""Spark as the batch engine, and the bridge between Spark and the Delta lakehouse.

No delta-spark jars are available here, so Delta is read in Spark from the files of
the current snapshot (``DeltaTable.file_uris()``) and written back through Arrow
(Spark writes Parquet to a staging folder, deltalake streams it into one Delta
commit). A cluster that has delta-spark on its classpath switches to native
``format("delta")`` reads with ``native_delta=True``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as pads
from pydantic import Field

from recsys_assets import settings
from resources.lakehouse import LakehouseResource, is_remote

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_SPARK_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    # list explicit landing files on the driver instead of launching a listing job
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1000000",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "recsys-spark-warehouse"),
    "spark.driver.extraJavaOptions": "-Dderby.system.home=" + str(Path(tempfile.gettempdir()) / "recsys-derby"),
}

_lock = threading.Lock()
_session: SparkSession | None = None


def get_or_create_session(master: str, app_name: str, conf: dict[str, str]) -> SparkSession:
    """One SparkSession per process: later callers share the first session."""
    global _session
    with _lock:
        if _session is not None and _session._jsc is not None and not _session._jsc.sc().isStopped():
            return _session
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in {**DEFAULT_SPARK_CONF, **conf}.items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        return _session


class SparkResource(dg.ConfigurableResource):
    """A SparkSession built from config: ``local[*]`` on a laptop, any master URL in production."""

    master: str = Field(default_factory=settings.spark_master, description="Spark master URL (local[*], spark://..., k8s://..., yarn)")
    app_name: str = "recsys"
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark conf, merged over the platform defaults")
    staging_dir: str | None = Field(
        default=None,
        description="Folder Spark writes Parquet to before the Delta commit; must be readable by the driver. Default: a temp folder.",
    )
    native_delta: bool = Field(default=False, description="Read Delta with format('delta') (needs delta-spark jars on the cluster)")
    s3_native: bool = Field(default=False, description="Spark can read s3a:// (hadoop-aws on the classpath); otherwise S3 data goes through Arrow")

    def get_session(self) -> SparkSession:
        return get_or_create_session(self.master, self.app_name, dict(self.conf))

    # ---------------------------------------------------------------- reading
    def read_delta(self, lakehouse: LakehouseResource, name: str, predicate: str | None = None) -> DataFrame:
        """The current snapshot of a lakehouse table as a Spark DataFrame.

        ``predicate`` (SQL over partition columns) prunes files before Spark sees them
        and is also applied as a filter, so non-partition predicates are exact too.
        """
        spark = self.get_session()
        if not lakehouse.exists(name):
            raise FileNotFoundError(f"lakehouse table {name!r} does not exist at {lakehouse.table_uri(name)}; materialize it first")
        uri = lakehouse.live_uri(name)
        if self.native_delta and not lakehouse.staging_id:  # staged reads merge two tables: the file path below
            df = spark.read.format("delta").load(self._spark_path(uri))
            return df.where(predicate) if predicate else df
        schema = lakehouse.schema(name)
        if is_remote(uri) and not self.s3_native:
            table = lakehouse.read(name)
            df = spark.createDataFrame(table) if table.num_rows else self.empty_frame(schema)
            return df.where(predicate) if predicate else df
        frames = []
        for root, files in lakehouse.file_segments(name, predicate):
            if not files:
                continue
            part = spark.read.option("basePath", self._spark_path(root)).parquet(*[self._spark_path(f) for f in files])
            # Partition columns come back from the folder names; restore the table's column order and types.
            frames.append(part.select(*[part[c].cast(self._spark_type(schema.field(c).type)) for c in schema.names]))
        if not frames:
            return self.empty_frame(schema)
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other)
        return df.where(predicate) if predicate else df

    def empty_frame(self, schema: pa.Schema) -> DataFrame:
        return self.get_session().createDataFrame(schema.empty_table())

    def from_arrow(self, table: pa.Table) -> DataFrame:
        return self.get_session().createDataFrame(table) if table.num_rows else self.empty_frame(table.schema)

    def _spark_path(self, uri: str) -> str:
        if uri.startswith("s3://") and self.s3_native:
            return "s3a://" + uri[len("s3://") :]
        return uri

    @staticmethod
    def _spark_type(arrow_type: pa.DataType):
        from pyspark.sql.pandas.types import from_arrow_type

        return from_arrow_type(arrow_type)

    # ---------------------------------------------------------------- writing
    def stage(self, df: DataFrame, partition_by: list[str] | None = None) -> StagedFrame:
        """Write ``df`` once as Parquet to a staging folder; read it back as Spark or Arrow.

        Use as a context manager (the folder is removed on exit). Several outputs can be
        cut from one Spark pass this way, and Arrow readers stream batches, so memory
        stays flat however large the data is.
        """
        return StagedFrame(self, df, partition_by or [])

    def write_delta_range(
        self,
        df: DataFrame,
        lakehouse: LakehouseResource,
        name: str,
        schema: pa.Schema,
        start,
        end,
        column: str = "event_date",
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> int:
        """Replace the days [start, end] of a lakehouse table with ``df`` (one atomic commit)."""
        with self.stage(df.select(*schema.names)) as staged:
            return lakehouse.overwrite_range(
                name, staged.reader(schema), start, end, column=column, partition_by=partition_by, commit_metadata=commit_metadata
            )

    def write_delta_full(
        self,
        df: DataFrame,
        lakehouse: LakehouseResource,
        name: str,
        schema: pa.Schema,
        commit_metadata: dict[str, str] | None = None,
    ) -> int:
        """Replace a whole (unpartitioned) lakehouse table with ``df``."""
        with self.stage(df.select(*schema.names)) as staged:
            return lakehouse.overwrite(name, staged.reader(schema), commit_metadata=commit_metadata)


class StagedFrame:
    """A DataFrame written once to Parquet (optionally Hive-partitioned) in a staging folder."""

    def __init__(self, resource: SparkResource, df: DataFrame, partition_by: list[str]):
        self._resource = resource
        self._df = df
        self._partition_by = partition_by
        self.path = Path(resource.staging_dir or tempfile.gettempdir()) / f"recsys-staging-{uuid.uuid4().hex}"

    def __enter__(self) -> StagedFrame:
        writer = self._df.write.mode("overwrite")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        writer.parquet(str(self.path))
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _has_files(self) -> bool:
        return any(p.suffix == ".parquet" for p in self.path.rglob("*.parquet"))

    def frame(self) -> DataFrame:
        """The staged rows as a Spark DataFrame (cheap: a Parquet scan)."""
        if not self._has_files():
            return self._resource.get_session().createDataFrame([], self._df.schema)
        return self._resource.get_session().read.parquet(str(self.path))

    def reader(self, schema: pa.Schema, filter: pads.Expression | None = None) -> pa.RecordBatchReader:
        """Stream the staged rows (optionally filtered) as Arrow batches cast to ``schema``."""
        if not self._has_files():
            return pa.RecordBatchReader.from_batches(schema, iter(()))
        dataset = pads.dataset(str(self.path), format="parquet", partitioning="hive" if self._partition_by else None)
        scanner = dataset.scanner(columns=schema.names, filter=filter, batch_size=64_000)
        return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in scanner.to_batches()))
