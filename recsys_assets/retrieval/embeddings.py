"""Schemas of the embedding tables (one row per entity of the current model version)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

ITEM_EMBEDDINGS_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("embedding", pa.list_(pa.float32())),  # L2-normalised, model dimension
        ("model_version", pa.string()),
        ("generated_at", UTC_US),  # Feast event timestamp
    ]
)

USER_EMBEDDINGS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("embedding", pa.list_(pa.float32())),
        ("is_cold_start", pa.bool_()),  # encoded from features only (no id embedding trained)
        ("model_version", pa.string()),
        ("generated_at", UTC_US),
    ]
)


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """The ``embedding`` column of an embeddings table as a float32 ``[rows, dim]`` matrix."""
    column = table.column("embedding").combine_chunks()
    dim = len(column[0]) if len(column) else 0
    return column.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)
