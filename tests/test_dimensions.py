"""Dimension snapshots are typed, and untypable rows are rejected with a reason."""

from __future__ import annotations

import datetime as dt
import json

from recsys_assets.ingestion.dimensions import parse_items, parse_users


def lines(*rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def test_users_are_typed_and_derived_fields_filled():
    parsed = parse_users(lines({"user_id": 2, "age": 9, "country": "br"}, {"user_id": "1", "age": 30, "country": "US", "signup_date": "2020-01-02"}))
    rows = parsed.table.to_pylist()
    assert [r["user_id"] for r in rows] == [1, 2]
    assert rows[0] == {"user_id": 1, "country": "US", "region": "NA", "age": 30, "age_band": "25-34", "is_kids": False, "signup_date": dt.date(2020, 1, 2)}
    assert rows[1]["region"] == "LATAM" and rows[1]["is_kids"] and rows[1]["age_band"] == "kids"


def test_bad_rows_are_rejected_and_last_duplicate_wins():
    parsed = parse_users(lines({"user_id": 1, "age": 30}, "not json", {"age": 3}, {"user_id": "x"}, {"user_id": 1, "age": 31}, "[1]"))
    assert parsed.table.column("age").to_pylist() == [31]
    assert parsed.duplicates_replaced == 1
    assert [r["line"] for r in parsed.rejected] == [2, 3, 4, 6]
    assert "user_id is missing" in parsed.rejected[1]["reason"]


def test_items_validate_genres_and_ratings():
    parsed = parse_items(
        lines(
            {"item_id": 1, "title": "A", "genres": ["Comedy", "Drama"], "release_date": "1995-01-01", "maturity_rating": "PG"},
            {"item_id": 2, "genres": "Action|Sci-Fi", "is_available": "false"},
            {"item_id": 3, "genres": ["Cooking"]},
            {"item_id": 4, "maturity_rating": "XXX"},
        )
    )
    rows = parsed.table.to_pylist()
    assert [r["item_id"] for r in rows] == [1, 2]
    assert rows[0]["primary_genre"] == "Comedy" and rows[0]["available_from"] == dt.date(1995, 1, 1)
    assert rows[1]["genres"] == ["Action", "Sci-Fi"] and rows[1]["is_available"] is False and rows[1]["maturity_rating"] == "NR"
    assert [r["reason"] for r in parsed.rejected] == ["unknown genres ['Cooking']", "maturity_rating 'XXX' is not one of ['G', 'PG', 'PG-13', 'R', 'NC-17', 'NR']"]
