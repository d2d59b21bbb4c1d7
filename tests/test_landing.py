"""Landing-zone conventions and the manifest that keeps partitions from rescanning everything."""

from __future__ import annotations

import datetime as dt

from recsys_assets.ingestion.manifest import day_span, files_for_days, refresh_manifest
from recsys_assets.sources.landing import LandingStore, arrival_day_of, scan_event_days

D = dt.date


def test_arrival_day_from_path_else_mtime():
    mtime = dt.datetime(2024, 1, 2, 23, 0, tzinfo=dt.timezone.utc)
    assert arrival_day_of("events/dt=2024-03-10/hour=01/a.jsonl", mtime) == D(2024, 3, 10)
    assert arrival_day_of("events/a.jsonl", mtime) == D(2024, 1, 2)


def test_scan_event_days_is_a_superset_of_attribution():
    data = (
        b'{"occurred_at": "2024-03-08T10:00:00.123Z"}\n'
        b'{"occurred_at":"2024-03-09T23:30:00-05:00"}\n'  # UTC date is the 10th: widened
        b'{"occurred_at": "2023-01-01T00:00:00Z"}\n'  # beyond the lateness window: arrival day
        b'{"occurred_at": "2024-03-11T00:00:00Z"}\n'  # future: arrival day
        b'{"occurred_at": "yesterday"}\n'
    )
    assert scan_event_days(data, D(2024, 3, 10), max_late_days=30) == {D(2024, 3, 8), D(2024, 3, 9), D(2024, 3, 10)}
    assert scan_event_days(data, D(2024, 3, 10), max_late_days=1) == {D(2024, 3, 9), D(2024, 3, 10)}


def test_a_file_of_late_events_touches_only_their_day():
    late = b'{"occurred_at": "2024-03-05T10:00:00Z"}\n{"occurred_at": "2024-03-05T11:00:00.5Z"}\n'
    assert scan_event_days(late, D(2024, 3, 10), max_late_days=30) == {D(2024, 3, 5)}
    with_bad_line = late + b"garbage\n"
    assert scan_event_days(with_bad_line, D(2024, 3, 10), max_late_days=30) == {D(2024, 3, 5), D(2024, 3, 10)}


def test_manifest_indexes_only_new_or_changed_files(tmp_path, lakehouse):
    store = LandingStore(str(tmp_path / "landing"))
    store.write_bytes("events/dt=2024-03-10/hour=01/a.jsonl", b'{"occurred_at": "2024-03-08T10:00:00Z"}\n')
    store.write_bytes("events/dt=2024-03-11/hour=01/b.jsonl", b'{"occurred_at": "2024-03-11T10:00:00Z"}\n')
    first = refresh_manifest(store, lakehouse, max_late_days=30)
    assert len(first.new_files) == 2 and first.new_days == {D(2024, 3, 8), D(2024, 3, 11)}  # a.jsonl holds only a late event
    assert refresh_manifest(store, lakehouse, max_late_days=30).new_files == []  # a re-tick indexes nothing

    assert [e.file_key for e in files_for_days(lakehouse, D(2024, 3, 8), D(2024, 3, 8))] == ["events/dt=2024-03-10/hour=01/a.jsonl"]
    assert len(files_for_days(lakehouse, D(2024, 3, 8), D(2024, 3, 11))) == 2
    assert files_for_days(lakehouse, D(2024, 3, 9), D(2024, 3, 9)) == []
    assert day_span(lakehouse) == (D(2024, 3, 8), D(2024, 3, 11))

    # a file rewritten with different content is re-indexed, its old days forgotten
    store.write_bytes("events/dt=2024-03-10/hour=01/a.jsonl", b'{"occurred_at": "2024-03-09T10:00:00Z"}\n{"x": 1}\n')
    again = refresh_manifest(store, lakehouse, max_late_days=30)
    assert [f.key for f in again.new_files] == ["events/dt=2024-03-10/hour=01/a.jsonl"]
    assert files_for_days(lakehouse, D(2024, 3, 8), D(2024, 3, 8)) == []
    assert [e.file_key for e in files_for_days(lakehouse, D(2024, 3, 9), D(2024, 3, 9))] == ["events/dt=2024-03-10/hour=01/a.jsonl"]

    # a wider lateness window re-scans what was scanned with a narrower one
    assert len(refresh_manifest(store, lakehouse, max_late_days=60).new_files) == 2


def test_hidden_and_temporary_files_are_ignored(tmp_path):
    store = LandingStore(str(tmp_path))
    store.write_bytes("events/dt=2024-03-10/hour=01/a.jsonl", b"{}\n")
    (tmp_path / "events/dt=2024-03-10/hour=01/.b.jsonl.tmp").write_bytes(b"partial")
    (tmp_path / "events/dt=2024-03-10/hour=01/_SUCCESS").write_bytes(b"")
    assert [f.key for f in store.list_files("events")] == ["events/dt=2024-03-10/hour=01/a.jsonl"]
