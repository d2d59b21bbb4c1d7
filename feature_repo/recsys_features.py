"""Feast objects of the platform: entities, Delta sources, feature views, feature services.

``build(lakehouse_uri)`` returns them for a given lakehouse root (the Dagster
``feast_registry`` asset applies them); at import time they are also bound to module
names for the ``feast`` CLI, with the lakehouse from ``RECSYS_LAKEHOUSE_URI`` /
``RECSYS_HOME`` (default ``<project>/.recsys/lakehouse``).

Every batch source is a Delta table written by a ``features`` asset; its
``feature_timestamp`` is the last microsecond of the day the row describes, so a
point-in-time join at time t only sees rows summarising events at or before t.
"""

from __future__ import annotations

import posixpath
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Array, Bool, Float32, Float64, Int32, Int64, String

from recsys_assets import settings

FEATURE_VIEW_TTL = timedelta(days=30)


def _table(lakehouse_uri: str, name: str) -> str:
    if "://" in lakehouse_uri and not lakehouse_uri.startswith("file://"):
        return posixpath.join(lakehouse_uri.rstrip("/"), name)
    return str(Path(lakehouse_uri.removeprefix("file://"), name).resolve())


def _source(lakehouse_uri: str, table: str, timestamp_field: str = "feature_timestamp") -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=_table(lakehouse_uri, table),
        file_format=DeltaFormat(),
        timestamp_field=timestamp_field,
        description=f"Delta table {table} (current snapshot)",
    )


def build(lakehouse_uri: str) -> dict[str, object]:
    """Every Feast object of the repository, reading Delta tables under ``lakehouse_uri``."""
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="A viewer profile")
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64, description="A title in the catalog")
    region = Entity(name="region", join_keys=["region"], value_type=ValueType.STRING, description="NA, LATAM, EMEA, APAC or GLOBAL")

    user_features = FeatureView(
        name="user_features",
        entities=[user],
        ttl=FEATURE_VIEW_TTL,
        schema=[
            Field(name="user_id", dtype=Int64),
            *[Field(name=n, dtype=Int64) for n in ("events_1d", "events_7d", "events_30d", "positives_1d", "positives_7d", "positives_30d")],
            *[Field(name=n, dtype=Int64) for n in ("plays_7d", "plays_30d", "completes_30d", "ratings_30d", "thumbs_down_30d")],
            Field(name="watch_seconds_30d", dtype=Float64),
            Field(name="mean_rating_30d", dtype=Float64),
            Field(name="active_days_30d", dtype=Int64),
            Field(name="days_since_last_activity", dtype=Int32),
            Field(name="distinct_items_30d", dtype=Int64),
            Field(name="genre_affinity", dtype=Array(Float32)),
            Field(name="favourite_genre", dtype=String),
        ],
        source=_source(lakehouse_uri, "user_features"),
        online=True,
        description="Per user, as of the end of each day: 1/7/30-day activity, genre affinity, recency.",
        tags={"team": "ml-platform"},
    )
    item_features = FeatureView(
        name="item_features",
        entities=[item],
        ttl=FEATURE_VIEW_TTL,
        schema=[
            Field(name="item_id", dtype=Int64),
            *[Field(name=n, dtype=Int64) for n in ("views_1d", "views_7d", "views_30d", "item_positives_1d", "item_positives_7d", "item_positives_30d")],
            Field(name="impressions_7d", dtype=Int64),
            Field(name="clicks_7d", dtype=Int64),
            Field(name="ctr_7d", dtype=Float64),
            Field(name="item_ratings_30d", dtype=Int64),
            Field(name="item_mean_rating_30d", dtype=Float64),
            Field(name="trend_velocity", dtype=Float64),
            Field(name="popularity_30d", dtype=Float64),
            Field(name="genre_vector", dtype=Array(Float32)),
            Field(name="primary_genre", dtype=String),
            Field(name="title_age_days", dtype=Int32),
            Field(name="maturity_rating", dtype=String),
            Field(name="is_available", dtype=Bool),
        ],
        source=_source(lakehouse_uri, "item_features"),
        online=True,
        description="Per catalog item, as of the end of each day: popularity windows, CTR, rating, trend, catalog attributes.",
        tags={"team": "ml-platform"},
    )
    item_similarities = FeatureView(
        name="item_similarities",
        entities=[item],
        ttl=FEATURE_VIEW_TTL,
        schema=[
            Field(name="item_id", dtype=Int64),
            Field(name="similar_item_ids", dtype=Array(Int64)),
            Field(name="similarity_scores", dtype=Array(Float32)),
            Field(name="item_users", dtype=Int64),
        ],
        source=_source(lakehouse_uri, "item_similarities"),
        online=True,
        description="Top co-engaged items per item (cosine-normalised co-occurrence): the basis of 'because you watched'.",
        tags={"team": "ml-platform"},
    )
    trending = FeatureView(
        name="trending",
        entities=[region],
        ttl=timedelta(days=3),
        schema=[
            Field(name="region", dtype=String),
            Field(name="item_ids", dtype=Array(Int64)),
            Field(name="scores", dtype=Array(Float32)),
        ],
        source=_source(lakehouse_uri, "trending_items"),
        online=True,
        description="The day's top items per region and GLOBAL (distinct engaged users, minimum support).",
        tags={"team": "ml-platform"},
    )
    # Real-time activity arrives through a push source (a stream consumer calls
    # recsys_assets.feature_store.realtime.push_user_activity); its batch source is the
    # Delta table the same rows would be archived to.
    user_activity_push = PushSource(
        name="user_activity_push",
        batch_source=FileSource(
            name="realtime_user_activity_source",
            path=_table(lakehouse_uri, "realtime_user_activity"),
            file_format=DeltaFormat(),
            timestamp_field="event_timestamp",
        ),
    )
    user_realtime_activity = FeatureView(
        name="user_realtime_activity",
        entities=[user],
        ttl=timedelta(days=1),
        schema=[
            Field(name="user_id", dtype=Int64),
            Field(name="recently_watched", dtype=Array(Int64)),
            Field(name="events_last_5m", dtype=Int64),
            Field(name="plays_last_5m", dtype=Int64),
        ],
        source=user_activity_push,
        online=True,
        description="Pushed from the event stream: the user's most recent watches and last-5-minute counts.",
        tags={"team": "ml-platform"},
    )

    # Model outputs: embeddings of the current version and the live recommendation lists.
    item_embeddings = FeatureView(
        name="item_embeddings",
        entities=[item],
        ttl=timedelta(0),
        schema=[Field(name="item_id", dtype=Int64), Field(name="embedding", dtype=Array(Float32)), Field(name="model_version", dtype=String)],
        source=_source(lakehouse_uri, "item_embeddings", "generated_at"),
        online=True,
        description="Two-tower item embeddings (unit norm) of the current model version.",
        tags={"team": "ml-platform"},
    )
    user_embeddings = FeatureView(
        name="user_embeddings",
        entities=[user],
        ttl=timedelta(0),
        schema=[Field(name="user_id", dtype=Int64), Field(name="embedding", dtype=Array(Float32)), Field(name="model_version", dtype=String)],
        source=_source(lakehouse_uri, "user_embeddings", "generated_at"),
        online=True,
        description="Two-tower user embeddings (unit norm) of the current model version.",
        tags={"team": "ml-platform"},
    )
    user_recommendations = FeatureView(
        name="user_recommendations",
        entities=[user],
        ttl=timedelta(0),
        schema=[
            Field(name="user_id", dtype=Int64),
            Field(name="item_ids", dtype=Array(Int64)),
            Field(name="scores", dtype=Array(Float32)),
            Field(name="model_version", dtype=String),
        ],
        source=_source(lakehouse_uri, "live_recommendations", "generated_at"),
        online=True,
        description="The live version's top-50 list per user (rank order).",
        tags={"team": "personalization"},
    )

    two_tower_training = FeatureService(
        name="two_tower_training",
        features=[
            user_features[["events_30d", "positives_30d", "active_days_30d", "days_since_last_activity", "mean_rating_30d", "genre_affinity"]],
            item_features[["popularity_30d", "trend_velocity", "item_mean_rating_30d", "title_age_days", "genre_vector", "maturity_rating"]],
        ],
        description="Point-in-time user and item features for training the two-tower model.",
    )
    serving = FeatureService(
        name="serving",
        features=[user_features, item_features, item_similarities, trending, user_realtime_activity, user_recommendations],
        description="Everything the serving layer reads online.",
    )
    return {
        "user": user,
        "item": item,
        "region": region,
        "user_features": user_features,
        "item_features": item_features,
        "item_similarities": item_similarities,
        "trending": trending,
        "user_activity_push": user_activity_push,
        "user_realtime_activity": user_realtime_activity,
        "item_embeddings": item_embeddings,
        "user_embeddings": user_embeddings,
        "user_recommendations": user_recommendations,
        "two_tower_training": two_tower_training,
        "serving": serving,
    }


# For the feast CLI: bind the objects to module names.
globals().update(build(settings.lakehouse_uri()))
