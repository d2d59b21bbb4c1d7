"""Users and items dimension snapshots: landing JSON Lines -> typed Arrow tables.

Dimensions are small (a catalog, a profile table), so this is plain Python. A row that
cannot be typed is rejected with a reason rather than guessed at; when an id appears
twice in one snapshot the last row wins (producers append corrections).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from recsys_assets.vocabulary import COUNTRY_REGION, GENRE_INDEX, MATURITY_RANK, age_band

USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("country", pa.string()),
        ("region", pa.string()),
        ("age", pa.int32()),
        ("age_band", pa.string()),
        ("is_kids", pa.bool_()),
        ("signup_date", pa.date32()),
    ]
)

ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("title", pa.string()),
        ("genres", pa.list_(pa.string())),
        ("primary_genre", pa.string()),
        ("release_date", pa.date32()),
        ("maturity_rating", pa.string()),
        ("runtime_minutes", pa.int32()),
        ("is_available", pa.bool_()),
        ("available_from", pa.date32()),
    ]
)


class RowError(ValueError):
    """A dimension row that cannot be typed."""


@dataclass
class ParsedDimension:
    table: pa.Table
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line", "reason", "raw"}
    duplicates_replaced: int = 0


def _int(value: Any, name: str, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise RowError(f"{name} is missing")
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())):
        raise RowError(f"{name}={value!r} is not an integer")
    return int(value)


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise RowError(f"{name}={value!r} is not a date") from exc


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y"}:
        return True
    if text in {"false", "0", "no", "n"}:
        return False
    raise RowError(f"{value!r} is not a boolean")


def user_row(raw: dict[str, Any]) -> dict[str, Any]:
    user_id = _int(raw.get("user_id"), "user_id")
    age = _int(raw.get("age"), "age", required=False)
    country = (raw.get("country") or "").strip().upper() or None
    region = raw.get("region") or COUNTRY_REGION.get(country or "", "unknown")
    is_kids = _bool(raw.get("is_kids"), default=age is not None and age < 13)
    return {
        "user_id": user_id,
        "country": country,
        "region": region,
        "age": age,
        "age_band": "kids" if is_kids else age_band(age),
        "is_kids": is_kids,
        "signup_date": _date(raw.get("signup_date"), "signup_date"),
    }


def item_row(raw: dict[str, Any]) -> dict[str, Any]:
    item_id = _int(raw.get("item_id"), "item_id")
    genres = raw.get("genres") or []
    if isinstance(genres, str):
        genres = [g for g in genres.split("|") if g]
    unknown = [g for g in genres if g not in GENRE_INDEX]
    if unknown:
        raise RowError(f"unknown genres {unknown}")
    rating = raw.get("maturity_rating") or "NR"
    if rating not in MATURITY_RANK:
        raise RowError(f"maturity_rating {rating!r} is not one of {list(MATURITY_RANK)}")
    release = _date(raw.get("release_date"), "release_date")
    return {
        "item_id": item_id,
        "title": str(raw.get("title") or f"item {item_id}"),
        "genres": list(genres),
        "primary_genre": genres[0] if genres else None,
        "release_date": release,
        "maturity_rating": rating,
        "runtime_minutes": _int(raw.get("runtime_minutes"), "runtime_minutes", required=False),
        "is_available": _bool(raw.get("is_available"), default=True),
        "available_from": _date(raw.get("available_from"), "available_from") or release,
    }


def parse_dimension(data: bytes, row_fn: Callable[[dict[str, Any]], dict[str, Any]], key: str, schema: pa.Schema) -> ParsedDimension:
    rows: dict[int, dict[str, Any]] = {}
    rejected: list[dict[str, Any]] = []
    replaced = 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise RowError("not a JSON object")
            row = row_fn(raw)
        except (json.JSONDecodeError, RowError) as exc:
            rejected.append({"line": number, "reason": str(exc), "raw": line[:500]})
            continue
        if row[key] in rows:
            replaced += 1
        rows[row[key]] = row
    table = pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=schema)
    return ParsedDimension(table, rejected, replaced)


def parse_users(data: bytes) -> ParsedDimension:
    return parse_dimension(data, user_row, "user_id", USERS_SCHEMA)


def parse_items(data: bytes) -> ParsedDimension:
    return parse_dimension(data, item_row, "item_id", ITEMS_SCHEMA)
