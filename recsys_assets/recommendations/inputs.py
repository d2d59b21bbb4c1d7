"""What list generation needs to know, read from the lakehouse: catalog state, user
histories, trending lists, similarities. Plain data out (dicts, sets, arrays)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.features.transforms import GLOBAL_REGION
from recsys_assets.recommendations.ranking import Catalog, UserContext
from resources.lakehouse import LakehouseResource

# An item counts as watched after any of these; thumbs down blocks it forever.
WATCHED_EVENT_TYPES = ("play", "complete", "rating", "thumbs_up")


def newest_day(lakehouse: LakehouseResource, table: str, column: str = "feature_date") -> dt.date:
    days = lakehouse.read(table, columns=[column]).column(column)
    if len(days) == 0:
        raise ValueError(f"{table} is empty")
    return pc.max(days).as_py()


def newest_rows(lakehouse: LakehouseResource, table: str, columns: list[str] | None = None) -> tuple[pa.Table, dt.date]:
    day = newest_day(lakehouse, table)
    return lakehouse.read_range(table, day, day, column="feature_date", columns=columns), day


@dataclass
class CatalogState:
    catalog: Catalog
    popular: list[int]  # available items by 30-day popularity
    as_of: dt.date


def catalog_state(lakehouse: LakehouseResource, new_title_days: int = 60, max_exploration_impressions_7d: int = 100) -> CatalogState:
    """Availability, genres and maturity of every item as of the newest item_features day,
    plus the exploration pool: available titles released in the last ``new_title_days``
    days with fewer than ``max_exploration_impressions_7d`` impressions in 7 days."""
    feats, day = newest_rows(
        lakehouse, "item_features", ["item_id", "is_available", "title_age_days", "impressions_7d", "popularity_30d"]
    )
    items = lakehouse.read("items", columns=["item_id", "primary_genre", "maturity_rating", "available_from"])
    f = {c: feats.column(c).to_pylist() for c in feats.column_names}
    available = dict(zip(f["item_id"], f["is_available"]))
    age = dict(zip(f["item_id"], f["title_age_days"]))
    impressions = dict(zip(f["item_id"], f["impressions_7d"]))
    ids = items.column("item_id").to_pylist()
    available_from = dict(zip(ids, items.column("available_from").to_pylist()))

    def is_new(i: int) -> bool:
        recent_release = age.get(i) is not None and 0 <= age[i] <= new_title_days
        recent_launch = available_from.get(i) is not None and 0 <= (day - available_from[i]).days <= new_title_days
        return bool(available.get(i)) and (recent_release or recent_launch) and (impressions.get(i) or 0) < max_exploration_impressions_7d

    catalog = Catalog.build(
        ids,
        items.column("primary_genre").to_pylist(),
        items.column("maturity_rating").to_pylist(),
        [bool(available.get(i, False)) for i in ids],
        [is_new(i) for i in ids],
    )
    popularity = sorted(((p or 0.0, -i) for i, p in zip(f["item_id"], f["popularity_30d"]) if available.get(i)), reverse=True)
    return CatalogState(catalog, [-neg for _, neg in popularity], day)


@dataclass
class Histories:
    watched: dict[int, set[int]]
    thumbs_down: dict[int, set[int]]
    recent_positives: dict[int, list[int]]  # newest first, distinct

    def context(self, user_id: int, is_kids: bool) -> UserContext:
        return UserContext(
            user_id,
            is_kids=is_kids,
            watched=frozenset(self.watched.get(user_id, ())),
            thumbs_down=frozenset(self.thumbs_down.get(user_id, ())),
        )

    def has_history(self, user_id: int) -> bool:
        return bool(self.watched.get(user_id) or self.recent_positives.get(user_id))


def user_histories(lakehouse: LakehouseResource, as_of: dt.date, days: int, positive_rating: float = 4.0) -> Histories:
    events = lakehouse.read_range(
        "raw_events", as_of - dt.timedelta(days=days - 1), as_of, columns=["user_id", "item_id", "event_type", "value", "occurred_at"]
    )
    types = events.column("event_type")
    watched_rows = events.filter(pc.is_in(types, pa.array(list(WATCHED_EVENT_TYPES))))
    down_rows = events.filter(pc.equal(types, "thumbs_down"))
    positive = pc.or_(
        pc.is_in(types, pa.array(["play", "complete", "thumbs_up", "click"])),
        pc.fill_null(pc.and_(pc.equal(types, "rating"), pc.greater_equal(events.column("value"), positive_rating)), False),
    )
    pos_rows = events.filter(positive).sort_by([("occurred_at", "descending")])
    watched: dict[int, set[int]] = defaultdict(set)
    for u, i in zip(watched_rows.column("user_id").to_pylist(), watched_rows.column("item_id").to_pylist()):
        watched[u].add(i)
    down: dict[int, set[int]] = defaultdict(set)
    for u, i in zip(down_rows.column("user_id").to_pylist(), down_rows.column("item_id").to_pylist()):
        down[u].add(i)
    recent: dict[int, list[int]] = defaultdict(list)
    seen: dict[int, set[int]] = defaultdict(set)
    for u, i in zip(pos_rows.column("user_id").to_pylist(), pos_rows.column("item_id").to_pylist()):
        if i not in seen[u]:
            seen[u].add(i)
            recent[u].append(i)
    return Histories(dict(watched), dict(down), dict(recent))


def trending_lists(lakehouse: LakehouseResource) -> tuple[dict[str, list[int]], dt.date]:
    rows, day = newest_rows(lakehouse, "trending_items", ["region", "item_ids"])
    return dict(zip(rows.column("region").to_pylist(), rows.column("item_ids").to_pylist())), day


def global_trending(trending: dict[str, list[int]]) -> list[int]:
    return list(trending.get(GLOBAL_REGION, []))


def similarity_lists(lakehouse: LakehouseResource) -> tuple[dict[int, tuple[list[int], list[float]]], dt.date]:
    rows, day = newest_rows(lakehouse, "item_similarities", ["item_id", "similar_item_ids", "similarity_scores"])
    return {
        i: (ids, scores)
        for i, ids, scores in zip(
            rows.column("item_id").to_pylist(), rows.column("similar_item_ids").to_pylist(), rows.column("similarity_scores").to_pylist()
        )
    }, day
