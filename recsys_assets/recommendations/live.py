"""Which model version's lists are live, and the promote/rollback that moves the pointer.

Every version writes its lists to ``user_recommendations`` (partitioned by version):
that is the shadow. Promotion builds the per-user lists serving reads
(``live_recommendations``, one atomic Delta overwrite), loads them into the Feast
online store (view ``user_recommendations``) and appends the decision, with both
versions' metrics, to ``recommendation_decisions``. The newest decision is the live
pointer; the previous version's lists stay in ``user_recommendations``, so a rollback is
a promotion of the previous version.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from recsys_assets.recommendations.tables import LIVE_RECOMMENDATIONS_SCHEMA
from resources.lakehouse import LakehouseResource

LIVE_TABLE = "live_recommendations"
DECISIONS_TABLE = "recommendation_decisions"
DECISIONS_SCHEMA = pa.schema(
    [
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("action", pa.string()),  # promote | rollback
        ("model_version", pa.string()),  # live after this decision
        ("previous_version", pa.string()),  # live before it
        ("reason", pa.string()),
        ("candidate_metrics", pa.string()),  # JSON
        ("previous_metrics", pa.string()),  # JSON
        ("users", pa.int64()),
        ("dagster_run_id", pa.string()),
    ]
)


def decisions(lakehouse: LakehouseResource) -> list[dict[str, Any]]:
    """Every promote/rollback decision, oldest first."""
    if not lakehouse.exists(DECISIONS_TABLE):
        return []
    return lakehouse.read(DECISIONS_TABLE).sort_by("decided_at").to_pylist()


def live_version(lakehouse: LakehouseResource) -> str | None:
    history = decisions(lakehouse)
    return history[-1]["model_version"] if history else None


def rollback_target(lakehouse: LakehouseResource) -> str | None:
    """The version that was live before the current one."""
    history = decisions(lakehouse)
    return history[-1]["previous_version"] if history else None


def per_user_lists(recommendations: pa.Table, generated_at: dt.datetime) -> pa.Table:
    """Long-format rows of one version -> one row per user with rank-ordered arrays."""
    rows = recommendations.sort_by([("user_id", "ascending"), ("rank", "ascending")])
    grouped = rows.group_by("user_id", use_threads=False).aggregate(
        [("item_id", "list"), ("score", "list"), ("model_version", "first")]
    )
    n = grouped.num_rows
    return pa.table(
        {
            "user_id": grouped.column("user_id"),
            "item_ids": grouped.column("item_id_list"),
            "scores": grouped.column("score_list"),
            "model_version": grouped.column("model_version_first"),
            "generated_at": pa.array([generated_at] * n, pa.timestamp("us", tz="UTC")),
        }
    ).cast(LIVE_RECOMMENDATIONS_SCHEMA)


def version_lists(lakehouse: LakehouseResource, version: str, generated_at: dt.datetime) -> pa.Table:
    if not lakehouse.exists("user_recommendations"):
        raise ValueError("no user_recommendations yet")
    recs = lakehouse.read("user_recommendations", columns=["user_id", "rank", "item_id", "score", "model_version"], filters=[("model_version", "=", version)])
    if recs.num_rows == 0:
        raise ValueError(f"user_recommendations has no lists for model version {version}")
    return per_user_lists(recs, generated_at)


def promote(
    lakehouse: LakehouseResource,
    version: str,
    *,
    action: str,
    reason: str,
    candidate_metrics: dict[str, Any] | None,
    previous_metrics: dict[str, Any] | None,
    run_id: str,
    load_online,
) -> dict[str, Any]:
    """Make ``version`` live: serving table swap, online load, then the decision record."""
    now = dt.datetime.now(dt.timezone.utc)
    previous = live_version(lakehouse)
    lists = version_lists(lakehouse, version, now)
    table_version = lakehouse.overwrite(LIVE_TABLE, lists, commit_metadata={"model_version": version, "action": action})
    load_online(now)
    decision = {
        "decided_at": now,
        "action": action,
        "model_version": version,
        "previous_version": previous,
        "reason": reason,
        "candidate_metrics": json.dumps(candidate_metrics or {}),
        "previous_metrics": json.dumps(previous_metrics or {}),
        "users": lists.num_rows,
        "dagster_run_id": run_id,
    }
    lakehouse.append(DECISIONS_TABLE, pa.Table.from_pylist([decision], schema=DECISIONS_SCHEMA))
    return {**decision, "live_table_version": table_version}
