"""Event validation and de-duplication in Spark: landing lines -> valid events, dead letters, audit.

Pure DataFrame transformations; the asset in ``ingestion.assets`` only wires storage.

Every non-blank landing line ends up in exactly one place, per partition day::

    lines read = valid events + duplicates removed + dead-lettered

A line's *partition day* is the UTC date of its ``occurred_at`` when that date lies in
``[arrival_day - max_late_days, arrival_day]`` (``arrival_day`` is the landing file's
``dt=``), and the arrival day otherwise, so bad and out-of-window lines are still
accounted for in exactly one partition. Valid events always satisfy
``event_date == date(occurred_at)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from recsys_assets.sources.landing import ISO_TIMESTAMP_PATTERN
from recsys_assets.vocabulary import EVENT_TYPES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

UTC_US = pa.timestamp("us", tz="UTC")

RAW_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event_type", pa.string()),
        ("occurred_at", UTC_US),
        ("ingested_at", UTC_US),
        ("value", pa.float64()),
        ("device", pa.string()),
        ("session_id", pa.string()),
        ("surface", pa.string()),
        ("position", pa.int32()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("event_date", pa.date32()),
    ]
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("event_id", pa.string()),
        ("raw_payload", pa.string()),
        ("payload_bytes", pa.int64()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("event_date", pa.date32()),
    ]
)

AUDIT_SCHEMA = pa.schema(
    [
        ("lines_read", pa.int64()),
        ("valid_events", pa.int64()),
        ("duplicates_removed", pa.int64()),
        ("dead_lettered", pa.int64()),
        ("dead_letter_reasons", pa.map_(pa.string(), pa.int64())),
        ("files_read", pa.int64()),
        ("event_date", pa.date32()),
    ]
)

# Dead-letter reasons, in the order they are tested (the first that applies wins).
REASONS: tuple[str, ...] = (
    "oversized_payload",
    "unparseable_line",
    "null_id",
    "malformed_id",
    "unknown_event_type",
    "malformed_timestamp",
    "future_timestamp",
    "stale_timestamp",
    "invalid_value",
    "unknown_user",
    "unknown_item",
)


@dataclass(frozen=True)
class ValidationRules:
    """What a valid event is. Defaults suit the simulator and MovieLens."""

    max_event_bytes: int = 16_384  # longer lines are oversized payloads
    max_late_days: int = 30  # events arriving later than this go to dead letters
    future_tolerance_seconds: int = 300  # client clocks may run this far ahead of ingestion
    max_watch_seconds: float = 6 * 3600.0
    rating_min: float = 1.0
    rating_max: float = 5.0
    event_types: tuple[str, ...] = EVENT_TYPES


def _payload_schema():
    from pyspark.sql import types as T

    s = T.StringType()
    context = T.StructType([T.StructField(n, s) for n in ("device", "session_id", "surface", "position")])
    fields = [T.StructField(n, s) for n in ("event_id", "user_id", "item_id", "event_type", "occurred_at", "ingested_at", "value")]
    return T.StructType([*fields, T.StructField("context", context), T.StructField("_corrupt", s)])


def read_landing_lines(spark: SparkSession, files: list[tuple[str, str, dt.date]]) -> DataFrame:
    """Lines of landing files as ``(source_file, source_line, line, arrival_day)``.

    ``files`` holds ``(local_path, file_key, arrival_day)``; ``source_file`` is the key
    and ``source_line`` is 1-based. Blank lines are not events and are skipped.
    """
    from pyspark.sql import functions as F

    if not files:
        return spark.createDataFrame([], "source_file string, source_line long, line string, arrival_day date")
    mapping = spark.createDataFrame(
        [(path, key, arrival) for path, key, arrival in files], "local_path string, source_file string, arrival_day date"
    )
    text = spark.read.text([path for path, _, _ in files], wholetext=True)
    text = text.select(F.url_decode(F.regexp_replace(F.input_file_name(), r"^file:(//)?", "")).alias("local_path"), "value")
    lines = text.select("local_path", F.posexplode(F.split("value", "\n")).alias("pos", "line"))
    line = F.col("line")
    lines = lines.select(
        "local_path",
        (F.col("pos") + 1).cast("long").alias("source_line"),
        F.when(line.endswith("\r"), F.expr("substring(line, 1, length(line) - 1)")).otherwise(line).alias("line"),
    ).where(F.length(F.trim("line")) > 0)
    return lines.join(F.broadcast(mapping), "local_path").select("source_file", "source_line", "line", "arrival_day")


def _strip(col: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(F.trim(col) == "", None).otherwise(F.trim(col))


def classify_events(lines: DataFrame, users: DataFrame, items: DataFrame, rules: ValidationRules) -> DataFrame:
    """Parse, type and validate every line; adds ``reason``/``detail`` (null when valid) and ``partition_day``."""
    from pyspark.sql import functions as F

    payload_bytes = F.octet_length("line")
    oversized = payload_bytes > rules.max_event_bytes
    df = lines.select(
        "*",
        payload_bytes.alias("payload_bytes"),
        F.when(~oversized, F.from_json("line", _payload_schema(), {"columnNameOfCorruptRecord": "_corrupt"})).alias("j"),
    )
    trimmed = F.trim("line")
    parse_ok = F.col("j").isNotNull() & F.col("j._corrupt").isNull() & trimmed.startswith("{") & trimmed.endswith("}")

    event_id, user_raw, item_raw = _strip(F.col("j.event_id")), _strip(F.col("j.user_id")), _strip(F.col("j.item_id"))
    occurred_raw, ingested_raw = _strip(F.col("j.occurred_at")), _strip(F.col("j.ingested_at"))
    df = df.select(
        "*",
        parse_ok.alias("parse_ok"),
        event_id.alias("event_id"),
        user_raw.alias("user_raw"),
        item_raw.alias("item_raw"),
        user_raw.try_cast("long").alias("user_id"),
        item_raw.try_cast("long").alias("item_id"),
        F.col("j.event_type").alias("event_type"),
        occurred_raw.alias("occurred_raw"),
        ingested_raw.alias("ingested_raw"),
        F.when(occurred_raw.rlike(ISO_TIMESTAMP_PATTERN), occurred_raw.try_cast("timestamp")).alias("occurred_at"),
        F.when(ingested_raw.rlike(ISO_TIMESTAMP_PATTERN), ingested_raw.try_cast("timestamp")).alias("ingested_at"),
        F.col("j.value").alias("value_raw"),
        _strip(F.col("j.value")).try_cast("double").alias("value"),
        F.col("j.context.device").alias("device"),
        F.col("j.context.session_id").alias("session_id"),
        F.col("j.context.surface").alias("surface"),
        _strip(F.col("j.context.position")).try_cast("int").alias("position"),
    )

    known_users = users.select(F.col("user_id").alias("_known_user")).distinct()
    known_items = items.select(F.col("item_id").alias("_known_item")).distinct()
    df = df.join(F.broadcast(known_users), df.user_id == known_users._known_user, "left")
    df = df.join(F.broadcast(known_items), df.item_id == known_items._known_item, "left")

    occ_day = F.to_date("occurred_at")
    window_start = F.date_sub("arrival_day", rules.max_late_days)
    event_types = list(rules.event_types)
    value = F.col("value")
    value_present = F.col("value_raw").isNotNull() & (F.trim(F.col("value_raw")) != "")
    is_rating = F.col("event_type") == "rating"
    is_watch = F.col("event_type").isin("play", "complete")
    value_problem = (
        F.when(value_present & value.isNull(), F.lit("value is not a number"))
        .when(value.isNotNull() & (F.isnan(value) | (F.abs(value) == float("inf"))), F.lit("value is not finite"))
        .when(is_rating & value.isNull(), F.lit("rating without a value"))
        .when(is_rating & ((value < rules.rating_min) | (value > rules.rating_max)), F.lit(f"rating outside [{rules.rating_min:g}, {rules.rating_max:g}]"))
        .when(is_watch & ((value < 0) | (value > rules.max_watch_seconds)), F.lit(f"watch seconds outside [0, {rules.max_watch_seconds:g}]"))
    )
    null_ids = F.concat_ws(
        ", ",
        F.when(F.col("event_id").isNull(), F.lit("event_id")),
        F.when(F.col("user_raw").isNull(), F.lit("user_id")),
        F.when(F.col("item_raw").isNull(), F.lit("item_id")),
    )
    tolerance = F.make_dt_interval(F.lit(0), F.lit(0), F.lit(0), F.lit(rules.future_tolerance_seconds))

    checks: list[tuple[str, Column, Column]] = [
        ("oversized_payload", oversized, F.format_string(f"line is %d bytes (limit {rules.max_event_bytes})", payload_bytes)),
        ("unparseable_line", ~F.col("parse_ok"), F.lit("not a JSON object")),
        ("null_id", F.col("event_id").isNull() | F.col("user_raw").isNull() | F.col("item_raw").isNull(), F.concat(null_ids, F.lit(" missing"))),
        (
            "malformed_id",
            F.col("user_id").isNull() | F.col("item_id").isNull() | (F.length("event_id") > 128),
            F.format_string("user_id=%s item_id=%s are not integers (or event_id too long)", F.col("user_raw"), F.col("item_raw")),
        ),
        (
            "unknown_event_type",
            F.col("event_type").isNull() | ~F.col("event_type").isin(*event_types),
            F.format_string("event_type '%s' is not one of " + ", ".join(event_types), F.coalesce(F.col("event_type"), F.lit("null"))),
        ),
        (
            "malformed_timestamp",
            F.col("occurred_at").isNull() | F.col("ingested_at").isNull(),
            F.format_string("occurred_at='%s' ingested_at='%s' (expected ISO-8601)", F.col("occurred_raw"), F.col("ingested_raw")),
        ),
        (
            "future_timestamp",
            (F.col("occurred_at") > F.col("ingested_at") + tolerance) | (occ_day > F.col("arrival_day")),
            F.format_string("occurred_at %s is after ingested_at %s", F.col("occurred_raw"), F.col("ingested_raw")),
        ),
        (
            "stale_timestamp",
            occ_day < window_start,
            F.format_string(f"occurred_at %s is more than {rules.max_late_days} days before arrival %s", F.col("occurred_raw"), F.col("arrival_day")),
        ),
        ("invalid_value", value_problem.isNotNull(), value_problem),
        ("unknown_user", F.col("_known_user").isNull(), F.format_string("user_id %d is not in users", F.col("user_id"))),
        ("unknown_item", F.col("_known_item").isNull(), F.format_string("item_id %d is not in items", F.col("item_id"))),
    ]
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for name, condition, text in reversed(checks):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
        detail = F.when(condition, text).otherwise(detail)

    in_window = F.col("occurred_at").isNotNull() & (occ_day >= window_start) & (occ_day <= F.col("arrival_day"))
    return df.select(
        "*",
        reason.alias("reason"),
        detail.alias("detail"),
        F.when(in_window, occ_day).otherwise(F.col("arrival_day")).alias("partition_day"),
    ).drop("j", "_known_user", "_known_item")


OUTCOME_SCHEMA = pa.schema(
    [
        *RAW_EVENTS_SCHEMA,
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_payload", pa.string()),
        ("payload_bytes", pa.int64()),
        ("outcome", pa.string()),
    ]
)
VALID, DUPLICATE, DEAD = "valid", "duplicate", "dead"


def outcomes(classified: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """One row per line of the days [start, end] with its ``outcome``.

    ``valid`` is the first delivery of an ``event_id`` on its day (earliest ``ingested_at``,
    then file and line), ``duplicate`` a later re-delivery, ``dead`` a rejected line (which
    keeps its raw payload). Only valid lines take part in the de-duplication shuffle, and
    they do without their raw payload.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = classified.where(F.col("partition_day").between(F.lit(start), F.lit(end))).withColumn("event_date", F.col("partition_day"))
    first = Window.partitionBy("event_date", "event_id").orderBy("ingested_at", "source_file", "source_line")
    events = [f.name for f in RAW_EVENTS_SCHEMA]
    valid = (
        df.where(F.col("reason").isNull())
        .select(*events, "reason", "detail", F.lit(None).cast("string").alias("raw_payload"), "payload_bytes")
        .withColumn("outcome", F.when(F.row_number().over(first) == 1, F.lit(VALID)).otherwise(F.lit(DUPLICATE)))
    )
    dead = df.where(F.col("reason").isNotNull()).select(
        *events, "reason", "detail", F.col("line").alias("raw_payload"), "payload_bytes", F.lit(DEAD).alias("outcome")
    )
    return valid.unionByName(dead)


def valid_events(outcome_rows: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return outcome_rows.where(F.col("outcome") == VALID).select(*RAW_EVENTS_SCHEMA.names)


def dead_letters(outcome_rows: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return outcome_rows.where(F.col("outcome") == DEAD).select(*DEAD_LETTER_SCHEMA.names)


def audit(outcome_rows: DataFrame) -> DataFrame:
    """Per day: lines read, valid, duplicates removed, dead-lettered (and by reason), files read."""
    from pyspark.sql import functions as F

    def count_of(kind: str) -> Column:
        return F.sum(F.when(F.col("outcome") == kind, 1).otherwise(0)).cast("long")

    per_reason = (
        outcome_rows.where(F.col("outcome") == DEAD)
        .groupBy("event_date", "reason")
        .count()
        .groupBy("event_date")
        .agg(F.map_from_entries(F.sort_array(F.collect_list(F.struct("reason", "count")))).alias("dead_letter_reasons"))
    )
    return (
        outcome_rows.groupBy("event_date")
        .agg(
            F.count(F.lit(1)).alias("lines_read"),
            count_of(VALID).alias("valid_events"),
            count_of(DUPLICATE).alias("duplicates_removed"),
            count_of(DEAD).alias("dead_lettered"),
            F.countDistinct("source_file").alias("files_read"),
        )
        .join(per_reason, "event_date", "left")
        .withColumn("dead_letter_reasons", F.coalesce("dead_letter_reasons", F.create_map().cast("map<string,bigint>")))
        .select(*AUDIT_SCHEMA.names)
    )


@dataclass
class IngestionFrames:
    valid: DataFrame  # de-duplicated events, RAW_EVENTS_SCHEMA columns
    dead: DataFrame  # DEAD_LETTER_SCHEMA columns
    audit: DataFrame  # AUDIT_SCHEMA columns, one row per partition day with lines


def ingest(classified: DataFrame, start: dt.date, end: dt.date) -> IngestionFrames:
    """Keep days [start, end], drop re-deliveries of an ``event_id`` within a day, and count."""
    rows = outcomes(classified, start, end)
    return IngestionFrames(valid=valid_events(rows), dead=dead_letters(rows), audit=audit(rows))
