"""MovieLens importer: an ml-100k folder (u.data, u.item, u.user) -> the landing zone.

Ratings become ``rating`` events (value 1-5; the features stage treats ratings >= 4 as
positive watches). Each event's id is a UUIDv5 of (user, item, timestamp), so
re-importing writes identical files. Events are replayed as if they arrived when
they occurred: one batch file per day, ``ingested_at == occurred_at``.

MovieLens has no maturity ratings, countries or kids profiles: items are "NR", users
are in the US ("NA" region) and no profile is a kids profile. Dagster-free.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from pathlib import Path

import pandas as pd

from recsys_assets.sources.landing import ITEMS_PREFIX, USERS_PREFIX, LandingStore, dimension_key, event_batch_key
from recsys_assets.vocabulary import age_band

ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_GENRE_NAME = {"Children's": "Children"}
_NAMESPACE = uuid.UUID("7f5b9c1e-2d1a-4c59-9d0e-6a1c7e3b8f20")


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: expected a MovieLens-100K folder with u.data, u.item and u.user")
    return path


def read_ratings(folder: Path) -> pd.DataFrame:
    return pd.read_csv(_require(folder, "u.data"), sep="\t", names=["user_id", "item_id", "rating", "timestamp"], dtype="int64")


def read_items(folder: Path) -> list[dict]:
    rows = []
    for line in _require(folder, "u.item").read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        flags = parts[5:24]
        genres = [_GENRE_NAME.get(g, g) for g, flag in zip(ML_GENRES, flags) if flag == "1" and g != "unknown"]
        release = dt.datetime.strptime(parts[2], "%d-%b-%Y").date().isoformat() if parts[2] else None
        rows.append(
            {
                "item_id": int(parts[0]),
                "title": parts[1],
                "genres": genres,
                "release_date": release,
                "maturity_rating": "NR",
                "runtime_minutes": None,
                "is_available": True,
                "available_from": release,
            }
        )
    return rows


def read_users(folder: Path) -> list[dict]:
    rows = []
    for line in _require(folder, "u.user").read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        user_id, age, _gender, _occupation, _zip = line.split("|")
        rows.append(
            {
                "user_id": int(user_id),
                "country": "US",
                "region": "NA",
                "age": int(age),
                "age_band": age_band(int(age)),
                "is_kids": False,
                "signup_date": None,
            }
        )
    return rows


def import_movielens(folder: str | Path, store: LandingStore) -> dict:
    """Write users, items and one event batch per day into the landing zone; returns a summary."""
    folder = Path(folder)
    ratings = read_ratings(folder)
    items = read_items(folder)
    users = read_users(folder)
    occurred = pd.to_datetime(ratings["timestamp"], unit="s", utc=True)
    last_day = occurred.max().date()
    store.write_bytes(dimension_key(USERS_PREFIX, last_day), _jsonl(users))
    store.write_bytes(dimension_key(ITEMS_PREFIX, last_day), _jsonl(items))

    batches: dict[str, list[str]] = defaultdict(list)
    iso = occurred.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for user, item, rating, ts, when, day in zip(
        ratings["user_id"], ratings["item_id"], ratings["rating"], ratings["timestamp"], iso, occurred.dt.date
    ):
        event_id = uuid.uuid5(_NAMESPACE, f"ml-100k:{user}:{item}:{ts}")
        line = json.dumps(
            {
                "event_id": str(event_id),
                "user_id": int(user),
                "item_id": int(item),
                "event_type": "rating",
                "occurred_at": when,
                "ingested_at": when,
                "value": float(rating),
                "context": {"device": None, "session_id": None, "surface": "movielens", "position": None},
            }
        )
        arrival = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
        batches[event_batch_key(arrival, "movielens", f"{day:%Y%m%d}")].append(line)
    for key in sorted(batches):
        store.write_bytes(key, ("\n".join(batches[key]) + "\n").encode())
    return {
        "events": len(ratings),
        "users": len(users),
        "items": len(items),
        "first_day": occurred.min().date().isoformat(),
        "last_day": last_day.isoformat(),
        "files_written": len(batches),
    }


def _jsonl(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
