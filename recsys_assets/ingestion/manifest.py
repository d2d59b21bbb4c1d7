"""The landing manifest: which landing files hold events of which partition day.

Listing the landing zone is cheap; reading it is not. The manifest is a Delta table
with one row per (file, partition day it may touch), filled incrementally: each
refresh lists the landing zone and scans only files it has not seen (or that changed
size), with the fast byte scan of :func:`scan_event_days`. A partition run then reads
only the files the manifest names for its days, however large the landing zone grows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.sources.landing import EVENTS_PREFIX, LandingFile, LandingStore, scan_event_days
from resources.lakehouse import LakehouseResource

MANIFEST_TABLE = "landing_manifest"
MANIFEST_SCHEMA = pa.schema(
    [
        ("file_key", pa.string()),
        ("file_uri", pa.string()),
        ("size_bytes", pa.int64()),
        ("modified_at", pa.timestamp("us", tz="UTC")),
        ("arrival_day", pa.date32()),
        ("partition_day", pa.date32()),
        ("max_late_days", pa.int32()),
        ("indexed_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class ManifestEntry:
    file_key: str
    file_uri: str
    arrival_day: dt.date


@dataclass(frozen=True)
class ManifestRefresh:
    listed_files: int
    new_files: list[LandingFile]
    new_days: set[dt.date]


def scan_files(store: LandingStore, files: Iterable[LandingFile], max_late_days: int) -> pa.Table:
    """Manifest rows for ``files``: one per partition day each file may touch."""
    files = list(files)
    now = dt.datetime.now(dt.timezone.utc)

    def scan(f: LandingFile) -> list[dict]:
        days = scan_event_days(store.read_bytes(f.key), f.arrival_day, max_late_days)
        return [
            {
                "file_key": f.key,
                "file_uri": f.uri,
                "size_bytes": f.size,
                "modified_at": f.modified,
                "arrival_day": f.arrival_day,
                "partition_day": day,
                "max_late_days": max_late_days,
                "indexed_at": now,
            }
            for day in sorted(days)
        ]

    workers = 8 if store.is_s3 else 2
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = [row for chunk in pool.map(scan, files) for row in chunk]
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def refresh_manifest(store: LandingStore, lakehouse: LakehouseResource, max_late_days: int) -> ManifestRefresh:
    """Add files that are new (or changed, or scanned with a narrower lateness window)."""
    listed = store.list_files(EVENTS_PREFIX)
    known: dict[str, tuple[int, int]] = {}
    if lakehouse.exists(MANIFEST_TABLE):
        current = lakehouse.read(MANIFEST_TABLE, columns=["file_key", "size_bytes", "max_late_days"])
        for key, size, late in zip(*(current.column(c).to_pylist() for c in current.column_names)):
            known[key] = (size, late)
    todo = [f for f in listed if f.key not in known or known[f.key][0] != f.size or known[f.key][1] < max_late_days]
    if not todo:
        return ManifestRefresh(len(listed), [], set())
    rows = scan_files(store, todo, max_late_days)
    stale = sorted(f.key for f in todo if f.key in known)
    if stale:
        quoted = ", ".join("'" + k.replace("'", "''") + "'" for k in stale)
        lakehouse.delete(MANIFEST_TABLE, f"file_key IN ({quoted})")
    lakehouse.append(MANIFEST_TABLE, rows)
    return ManifestRefresh(len(listed), todo, set(rows.column("partition_day").to_pylist()))


def files_for_days(lakehouse: LakehouseResource, start: dt.date, end: dt.date) -> list[ManifestEntry]:
    """The landing files that may hold events of days [start, end], by key."""
    if not lakehouse.exists(MANIFEST_TABLE):
        return []
    rows = lakehouse.read(
        MANIFEST_TABLE,
        columns=["file_key", "file_uri", "arrival_day"],
        filters=[("partition_day", ">=", start), ("partition_day", "<=", end)],
    )
    seen: dict[str, ManifestEntry] = {}
    for key, uri, arrival in zip(*(rows.column(c).to_pylist() for c in rows.column_names)):
        seen.setdefault(key, ManifestEntry(key, uri, arrival))
    return [seen[k] for k in sorted(seen)]


def day_span(lakehouse: LakehouseResource) -> tuple[dt.date, dt.date] | None:
    """First and last partition day the landing zone holds events for (None when empty)."""
    if not lakehouse.exists(MANIFEST_TABLE):
        return None
    days = lakehouse.read(MANIFEST_TABLE, columns=["partition_day"]).column("partition_day")
    if len(days) == 0:
        return None
    bounds = pc.min_max(days).as_py()
    return bounds["min"], bounds["max"]
