"""The Spark validation/de-duplication transforms on hand-made landing lines."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recsys_assets.ingestion.events import REASONS, ValidationRules, classify_events, ingest, read_landing_lines

ARRIVAL = dt.date(2024, 3, 10)


def event(**overrides) -> dict:
    base = {
        "event_id": "e-1",
        "user_id": 1,
        "item_id": 10,
        "event_type": "play",
        "occurred_at": "2024-03-10T12:00:00Z",
        "ingested_at": "2024-03-10T12:00:05Z",
        "value": 600.0,
        "context": {"device": "tv", "session_id": "s1", "surface": "home_row", "position": 2},
    }
    base.update(overrides)
    return base


@pytest.fixture
def dims(spark):
    users = spark.createDataFrame([(1,), (2,)], "user_id long")
    items = spark.createDataFrame([(10,), (11,)], "item_id long")
    return users, items


def classify(spark, dims, lines: list[str], arrival: dt.date = ARRIVAL, rules: ValidationRules | None = None):
    df = spark.createDataFrame(
        [("f1.jsonl", i + 1, line, arrival) for i, line in enumerate(lines)],
        "source_file string, source_line long, line string, arrival_day date",
    )
    return classify_events(df, *dims, rules or ValidationRules())


def reasons_of(spark, dims, lines, **kw) -> list[str | None]:
    rows = classify(spark, dims, lines, **kw).orderBy("source_line").select("reason").collect()
    return [r.reason for r in rows]


def test_valid_event_is_typed(spark, dims):
    row = classify(spark, dims, [json.dumps(event())]).collect()[0]
    assert row.reason is None
    assert (row.user_id, row.item_id, row.event_type, row.value, row.position) == (1, 10, "play", 600.0, 2)
    assert row.occurred_at == dt.datetime(2024, 3, 10, 12, 0, 0)  # UTC session time zone
    assert row.partition_day == dt.date(2024, 3, 10)


BAD_LINES = [
    ("x" * 20_000, "oversized_payload"),
    ('{"event_id": "e-1", "user_id": 1', "unparseable_line"),
    ("[1, 2, 3]", "unparseable_line"),
    ('{"event_id": "e"} trailing', "unparseable_line"),
    (json.dumps(event(user_id=None)), "null_id"),
    (json.dumps(event(event_id="")), "null_id"),
    (json.dumps({k: v for k, v in event().items() if k != "item_id"}), "null_id"),
    (json.dumps(event(item_id="item-abc")), "malformed_id"),
    (json.dumps(event(event_type="scroll")), "unknown_event_type"),
    (json.dumps(event(occurred_at="yesterday")), "malformed_timestamp"),
    (json.dumps(event(occurred_at="2024-13-45T10:00:00Z")), "malformed_timestamp"),
    (json.dumps(event(ingested_at=None)), "malformed_timestamp"),
    (json.dumps(event(occurred_at="2024-03-10T12:30:00Z")), "future_timestamp"),
    (json.dumps(event(occurred_at="2024-01-01T12:00:00Z", ingested_at="2024-03-10T12:00:00Z")), "stale_timestamp"),
    (json.dumps(event(event_type="rating", value=7)), "invalid_value"),
    (json.dumps(event(event_type="rating", value=None)), "invalid_value"),
    (json.dumps(event(value="lots")), "invalid_value"),
    (json.dumps(event(value=-5)), "invalid_value"),
    (json.dumps(event(user_id=999)), "unknown_user"),
    (json.dumps(event(item_id=999)), "unknown_item"),
]


def test_each_bad_input_gets_its_reason(spark, dims):
    # One Spark job for all cases; line i carries the expected reason i.
    rows = classify(spark, dims, [line for line, _ in BAD_LINES]).orderBy("source_line").collect()
    got = [(r.source_line, r.reason) for r in rows]
    assert got == [(i + 1, reason) for i, (_, reason) in enumerate(BAD_LINES)]
    assert all(r.detail for r in rows)  # a human-readable explanation each
    assert {reason for _, reason in BAD_LINES} == set(REASONS)  # every reason is exercised


def test_special_timestamp_words_are_not_parsed(spark, dims):
    # Spark would read 'today'/'now' as the current time: the strict ISO check must stop that.
    assert reasons_of(spark, dims, [json.dumps(event(occurred_at=w)) for w in ("today", "now", "epoch")]) == ["malformed_timestamp"] * 3


def test_offsets_are_converted_to_utc_days(spark, dims):
    line = json.dumps(event(occurred_at="2024-03-09T23:30:00-02:00", ingested_at="2024-03-10T02:00:00Z"))
    row = classify(spark, dims, [line]).collect()[0]
    assert row.reason is None and row.partition_day == dt.date(2024, 3, 10)


def test_late_event_lands_in_its_occurred_day_and_bad_lines_in_arrival_day(spark, dims):
    late = json.dumps(event(occurred_at="2024-03-05T08:00:00Z", ingested_at="2024-03-10T09:00:00Z"))
    stale = json.dumps(event(occurred_at="2023-01-01T08:00:00Z", ingested_at="2024-03-10T09:00:00Z"))
    rows = classify(spark, dims, [late, stale, "garbage"]).orderBy("source_line").collect()
    assert [(r.reason, r.partition_day) for r in rows] == [
        (None, dt.date(2024, 3, 5)),
        ("stale_timestamp", ARRIVAL),
        ("unparseable_line", ARRIVAL),
    ]


def test_dedup_keeps_first_delivery_and_books_balance(spark, dims):
    first = json.dumps(event(event_id="a"))
    lines = [first, json.dumps(event(event_id="b")), first, first, "not json", json.dumps(event(event_id="c", user_id=999))]
    frames = ingest(classify(spark, dims, lines), ARRIVAL, ARRIVAL)
    valid = frames.valid.orderBy("event_id").collect()
    assert [r.event_id for r in valid] == ["a", "b"]
    assert valid[0].source_line == 1  # the first delivery is the one kept
    audit = frames.audit.collect()[0]
    assert (audit.lines_read, audit.valid_events, audit.duplicates_removed, audit.dead_lettered) == (6, 2, 2, 2)
    assert dict(audit.dead_letter_reasons) == {"unparseable_line": 1, "unknown_user": 1}
    assert audit.lines_read == audit.valid_events + audit.duplicates_removed + audit.dead_lettered


def test_ingest_keeps_only_requested_days(spark, dims):
    lines = [
        json.dumps(event(event_id="old", occurred_at="2024-03-08T10:00:00Z")),
        json.dumps(event(event_id="new")),
    ]
    frames = ingest(classify(spark, dims, lines), dt.date(2024, 3, 8), dt.date(2024, 3, 8))
    assert [r.event_id for r in frames.valid.collect()] == ["old"]


def test_read_landing_lines_numbers_lines_and_skips_blanks(spark, tmp_path):
    folder = tmp_path / "events" / "dt=2024-03-10" / "hour=01"
    folder.mkdir(parents=True)
    path = folder / "p-1.jsonl"
    path.write_text('{"a": 1}\r\n\n  \n{"b": 2}\n')
    rows = read_landing_lines(spark, [(str(path), "events/dt=2024-03-10/hour=01/p-1.jsonl", ARRIVAL)]).orderBy("source_line").collect()
    assert [(r.source_line, r.line) for r in rows] == [(1, '{"a": 1}'), (4, '{"b": 2}')]
    assert {r.source_file for r in rows} == {"events/dt=2024-03-10/hour=01/p-1.jsonl"}
    assert {r.arrival_day for r in rows} == {ARRIVAL}
