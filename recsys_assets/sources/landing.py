"""The landing zone: where producers drop event batches and dimension snapshots.

Layout under the landing root (a local folder or an ``s3://bucket/prefix``)::

    events/dt=YYYY-MM-DD/hour=HH/<producer>-<batch>.jsonl   one file per producer batch,
                                                           organised by arrival time
    users/dt=YYYY-MM-DD/users.jsonl                         dimension snapshots; the newest
    items/dt=YYYY-MM-DD/items.jsonl                         snapshot is the current one

Event files hold one JSON object per line. A file's *arrival day* is the ``dt=`` of
its path (or its modification date when the path has none). Because events arrive
late, a file can hold events of earlier days; :func:`scan_event_days` tells which
days a file may touch without parsing it, which is what the landing manifest records.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS_PREFIX = "events"
USERS_PREFIX = "users"
ITEMS_PREFIX = "items"

_DT_RE = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})(?:/|$)")
# The event-time format ingestion accepts (ISO-8601, optional fraction, Z or +hh:mm; no
# offset means UTC). Shared by the manifest scan below and Spark validation (Java regex).
ISO_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
_OCCURRED_RE = re.compile(
    rb'"occurred_at"\s*:\s*"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"'
)
_UTC_SUFFIXES = {b"", b"Z", b"+00:00", b"-00:00"}


@dataclass(frozen=True)
class LandingFile:
    """One object in the landing zone."""

    key: str  # path relative to the landing root, with forward slashes
    uri: str  # absolute path or s3:// URI
    size: int
    modified: dt.datetime

    @property
    def arrival_day(self) -> dt.date:
        return arrival_day_of(self.key, self.modified)


def arrival_day_of(key: str, modified: dt.datetime) -> dt.date:
    match = _DT_RE.search(key)
    if match:
        return dt.date.fromisoformat(match.group(1))
    return modified.astimezone(dt.timezone.utc).date()


def event_batch_key(arrival: dt.datetime, producer: str, batch: str) -> str:
    """The landing key of one producer batch that arrived at ``arrival`` (UTC)."""
    return f"{EVENTS_PREFIX}/dt={arrival:%Y-%m-%d}/hour={arrival:%H}/{producer}-{batch}.jsonl"


def dimension_key(prefix: str, snapshot_day: dt.date) -> str:
    return f"{prefix}/dt={snapshot_day.isoformat()}/{prefix}.jsonl"


def scan_event_days(data: bytes, arrival_day: dt.date, max_late_days: int) -> set[dt.date]:
    """The partition days an event file contributes rows to (never missing one).

    Validation attributes an event to the UTC date of its ``occurred_at`` when that
    date lies in ``[arrival_day - max_late_days, arrival_day]`` and to the arrival day
    otherwise (bad and out-of-window lines). A non-UTC offset can move the UTC date a
    day either way from the text, so such dates are widened by a day. The arrival day is
    included only when some line is not attributable to an in-window date (unparseable,
    malformed, out of the window, or offset near the window's edge).
    """
    lo = arrival_day - dt.timedelta(days=max_late_days)
    days: set[dt.date] = set()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    attributed = 0
    cache: dict[tuple[bytes, bytes], tuple[set[dt.date], bool]] = {}
    for match in _OCCURRED_RE.finditer(data):
        key = (match.group(1), match.group(2) or b"")
        hit = cache.get(key)
        if hit is None:
            try:
                day = dt.date.fromisoformat(key[0].decode())
            except ValueError:
                cache[key] = hit = (set(), False)
            else:
                spread = (0,) if key[1] in _UTC_SUFFIXES else (-1, 0, 1)
                candidates = {day + dt.timedelta(days=o) for o in spread}
                inside = {d for d in candidates if lo <= d <= arrival_day}
                cache[key] = hit = (inside, inside == candidates)
        days |= hit[0]
        attributed += hit[1]
    if attributed < lines:
        days.add(arrival_day)
    return days


class LandingStore:
    """Lists, reads and writes landing files on a local folder or an S3 prefix.

    For S3 pass a boto3 S3 client (the Dagster resource hands over dagster-aws'
    ``S3Resource.get_client()``).
    """

    def __init__(self, root_uri: str, s3_client: Any = None):
        self.root_uri = root_uri[len("file://") :] if root_uri.startswith("file://") else root_uri
        self.is_s3 = self.root_uri.startswith("s3://")
        if self.is_s3:
            bucket, _, prefix = self.root_uri[len("s3://") :].partition("/")
            self.bucket, self.prefix = bucket, prefix.strip("/")
            if s3_client is None:
                import boto3

                s3_client = boto3.client("s3")
            self._s3 = s3_client
        elif "://" in self.root_uri:
            raise ValueError(f"landing zone must be a folder or s3://bucket/prefix, got {root_uri!r}")
        else:
            self.root = Path(self.root_uri).resolve()

    # -------------------------------------------------------------- listing
    def uri(self, key: str) -> str:
        if self.is_s3:
            return f"s3://{self.bucket}/{posixpath.join(self.prefix, key) if self.prefix else key}"
        return str(self.root / key)

    def list_files(self, prefix: str = EVENTS_PREFIX) -> list[LandingFile]:
        """Every file under ``prefix``, sorted by key (hidden and temp files skipped)."""
        files = self._list_s3(prefix) if self.is_s3 else self._list_local(prefix)
        return sorted((f for f in files if not _is_hidden(f.key)), key=lambda f: f.key)

    def _list_local(self, prefix: str) -> list[LandingFile]:
        base = self.root / prefix
        if not base.exists():
            return []
        out = []
        for path in base.rglob("*"):
            if path.is_file():
                stat = path.stat()
                out.append(
                    LandingFile(
                        key=path.relative_to(self.root).as_posix(),
                        uri=str(path),
                        size=stat.st_size,
                        modified=dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.timezone.utc),
                    )
                )
        return out

    def _list_s3(self, prefix: str) -> list[LandingFile]:
        full_prefix = posixpath.join(self.prefix, prefix) if self.prefix else prefix
        paginator = self._s3.get_paginator("list_objects_v2")
        out = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix.rstrip("/") + "/"):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix) + 1 :] if self.prefix else obj["Key"]
                out.append(LandingFile(key=key, uri=self.uri(key), size=obj["Size"], modified=obj["LastModified"]))
        return out

    # -------------------------------------------------------- reading/writing
    def read_bytes(self, key: str) -> bytes:
        if self.is_s3:
            return self._s3.get_object(Bucket=self.bucket, Key=self._s3_key(key))["Body"].read()
        return (self.root / key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write a file atomically (readers never see half a file)."""
        if self.is_s3:
            self._s3.put_object(Bucket=self.bucket, Key=self._s3_key(key), Body=data)
            return self.uri(key)
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return str(path)

    def local_paths(self, keys: list[str], cache_dir: str | None = None) -> dict[str, str]:
        """Local paths for the given keys: the files themselves, or S3 downloads in ``cache_dir``."""
        if not self.is_s3:
            return {key: str(self.root / key) for key in keys}
        cache = Path(cache_dir or tempfile.mkdtemp(prefix="recsys-landing-"))
        out = {}
        for key in keys:
            target = cache / key
            target.parent.mkdir(parents=True, exist_ok=True)
            self._s3.download_file(self.bucket, self._s3_key(key), str(target))
            out[key] = str(target)
        return out

    def _s3_key(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def latest_dimension(self, prefix: str) -> LandingFile | None:
        """The newest snapshot of a dimension (largest ``dt=``, then key)."""
        files = self.list_files(prefix)
        if not files:
            return None
        return max(files, key=lambda f: (f.arrival_day, f.key))


def _is_hidden(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.startswith((".", "_")) or name.endswith((".tmp", ".crc"))
