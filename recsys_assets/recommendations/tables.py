"""Schemas of the recommendation tables (long format history and the live per-user lists)."""

from __future__ import annotations

import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

# One row per (model_version, user, rank); Delta-partitioned by model_version, so every
# version's lists stay queryable (shadow versions, the live one, the previous one).
USER_RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("rank", pa.int32()),  # 1-based
        ("item_id", pa.int64()),
        ("score", pa.float32()),  # never increases with rank within a user's list
        ("retrieval_score", pa.float32()),  # the model's (or trending) score before re-ranking
        ("is_exploration", pa.bool_()),
        ("source", pa.string()),  # "two_tower" or "trending_cold_start"
        ("generated_at", UTC_US),
        ("model_version", pa.string()),
    ]
)

# One row per (user, seed item, rank): "because you watched <seed item>", from the
# item_similarities of `similarities_date` (no model involved).
BECAUSE_YOU_WATCHED_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("seed_item_id", pa.int64()),
        ("seed_rank", pa.int32()),  # 1 = the most recent positive item
        ("rank", pa.int32()),
        ("item_id", pa.int64()),
        ("score", pa.float32()),
        ("generated_at", UTC_US),
        ("similarities_date", pa.date32()),
    ]
)

# The lists serving reads: one row per user of the live version (Feast view source).
LIVE_RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_ids", pa.list_(pa.int64())),
        ("scores", pa.list_(pa.float32())),
        ("model_version", pa.string()),
        ("generated_at", UTC_US),
    ]
)
