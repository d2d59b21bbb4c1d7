"""recommendation_eval: the current model against baselines and against the live version."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from recsys_assets.evaluation.holdout import baseline_rankings, build_holdout, evaluate_top, markdown_table, model_ranking, similarity_matrix
from recsys_assets.evaluation.metrics import metric_keys
from recsys_assets.recommendations import live
from recsys_assets.training.artifacts import latest_version, load_model
from resources.lakehouse import LakehouseResource, table_metadata

OWNERS = ["team:ml-platform"]
K = 10
METRICS = list(metric_keys(K))
EVAL_SCHEMA = pa.schema(
    [
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("test_users", pa.int64()),
        ("model_version", pa.string()),
    ]
)
GATES_SCHEMA = pa.schema(
    [
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
        ("model_version", pa.string()),
        ("live_version", pa.string()),
        ("candidate_metrics", pa.string()),  # JSON, on the users both versions know
        ("live_metrics", pa.string()),
        ("tolerance", pa.float64()),
        ("gate_passed", pa.bool_()),
        ("gate_detail", pa.string()),
    ]
)


class EvalConfig(dg.Config):
    ndcg_tolerance: float = Field(default=0.01, description="A new version may trail live by at most this much nDCG@10")
    max_ease_items: int = Field(default=20_000, description="EASE inverts an items x items matrix: skipped above this size")


def _similarities_at(lakehouse: LakehouseResource, day: dt.date, item_ids: np.ndarray):
    """item_similarities as of the last training day (nothing from the holdout leaks in)."""
    rows = lakehouse.read_range("item_similarities", day, day, column="feature_date", columns=["item_id", "similar_item_ids", "similarity_scores"])
    lists = {
        i: (ids, scores)
        for i, ids, scores in zip(rows.column("item_id").to_pylist(), rows.column("similar_item_ids").to_pylist(), rows.column("similarity_scores").to_pylist())
    }
    return similarity_matrix(lists, item_ids)


# Every model version is measured before it may go live: against simple baselines that
# any model must beat, and against the version users see today, on the same holdout.
@dg.asset(
    group_name="evaluation",
    kinds={"python", "delta"},
    owners=OWNERS,
    deps=["two_tower_model", "training_examples", "item_similarities"],
    check_specs=[
        dg.AssetCheckSpec(
            "not_worse_than_live",
            asset="recommendation_eval",
            blocking=True,
            description="nDCG@10 of the new version is at most `ndcg_tolerance` below the live version on the same holdout",
        ),
        dg.AssetCheckSpec("beats_most_popular", asset="recommendation_eval", description="The model's nDCG@10 is above most-popular's"),
    ],
)
def recommendation_eval(context: dg.AssetExecutionContext, config: EvalConfig, lakehouse: LakehouseResource):
    """Offline metrics at k=10 (nDCG, recall, precision, MAP, catalog coverage, novelty) of the
    newest model version and of baselines fitted in the same run on the same time split:
    most-popular, item co-occurrence (from `item_similarities`), implicit ALS and EASE; plus the
    live version, if any, on the same holdout (the cutover gate).

    Grain: one row per (`model_version`, `model`, `metric`); Delta-partitioned by
    `model_version` (each version's evaluation is kept). Gate outcomes go to
    `recommendation_gates`.
    """
    version = latest_version(lakehouse)
    if version is None:
        raise dg.Failure("no trained model yet")
    artifact = load_model(lakehouse, version)
    examples = lakehouse.read("training_examples", columns=["user_id", "item_id", "event_date", "split"]).to_pandas()
    holdout = build_holdout(examples, artifact.user_ids, artifact.item_ids)
    users = holdout.test_users
    if len(users) == 0:
        raise dg.Failure("the holdout has no test users with unseen positives")
    train_end = dt.date.fromisoformat(artifact.manifest["training_data"]["train_end"])
    rankings = {"two_tower": model_ranking(artifact, holdout, users, K)}
    rankings.update(baseline_rankings(holdout, users, _similarities_at(lakehouse, train_end, artifact.item_ids), K, config.max_ease_items))
    results = {name: evaluate_top(holdout, users, ranked, K) for name, ranked in rankings.items()}

    live_version = live.live_version(lakehouse)
    gate_detail, gate_passed = "no live version yet: the first version may go live", True
    candidate_on_common, live_on_common = results["two_tower"], {}
    if live_version is not None and live_version != version:
        live_ranked = model_ranking(load_model(lakehouse, live_version), holdout, users, K)
        common = np.flatnonzero((live_ranked >= 0).any(axis=1))
        if len(common) == 0:
            gate_passed, gate_detail = False, f"live {live_version} knows none of the holdout users"
        else:
            candidate_on_common = evaluate_top(holdout, users[common], rankings["two_tower"][common], K)
            live_on_common = evaluate_top(holdout, users[common], live_ranked[common], K)
            results[f"live ({live_version})"] = live_on_common
            delta = candidate_on_common[f"ndcg@{K}"] - live_on_common[f"ndcg@{K}"]
            gate_passed = delta >= -config.ndcg_tolerance
            gate_detail = (
                f"nDCG@10 {candidate_on_common[f'ndcg@{K}']:.4f} vs live {live_on_common[f'ndcg@{K}']:.4f} "
                f"(delta {delta:+.4f}, tolerance {config.ndcg_tolerance}) on {len(common)} users"
            )
    elif live_version == version:
        gate_detail = "this version is already live"

    now = dt.datetime.now(dt.timezone.utc)
    rows = [
        {"evaluated_at": now, "model": m, "metric": k, "value": float(v), "test_users": int(len(users)), "model_version": version}
        for m, values in results.items()
        for k, v in values.items()
    ]
    table_version = lakehouse.overwrite_where("recommendation_eval", pa.Table.from_pylist(rows, schema=EVAL_SCHEMA), "model_version", version)
    gate = {
        "evaluated_at": now,
        "model_version": version,
        "live_version": live_version,
        "candidate_metrics": json.dumps(candidate_on_common),
        "live_metrics": json.dumps(live_on_common),
        "tolerance": config.ndcg_tolerance,
        "gate_passed": gate_passed,
        "gate_detail": gate_detail,
    }
    lakehouse.append("recommendation_gates", pa.Table.from_pylist([gate], schema=GATES_SCHEMA))
    table = markdown_table(results, METRICS)
    context.log.info(f"evaluation of {version} on {len(users)} test users:\n{table}")
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, "recommendation_eval", table_version),
            "model_version": version,
            "live_version": live_version or "none",
            "test_users": int(len(users)),
            "metrics": dg.MetadataValue.md(table),
            "ndcg@10": round(results["two_tower"][f"ndcg@{K}"], 4),
            "gate": gate_detail,
        }
    )
    yield dg.AssetCheckResult(
        check_name="not_worse_than_live",
        passed=gate_passed,
        metadata={"detail": gate_detail, "candidate": dg.MetadataValue.json(candidate_on_common), "live": dg.MetadataValue.json(live_on_common)},
    )
    model_ndcg, popular_ndcg = results["two_tower"][f"ndcg@{K}"], results["most_popular"][f"ndcg@{K}"]
    yield dg.AssetCheckResult(
        check_name="beats_most_popular",
        passed=model_ndcg > popular_ndcg,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"two_tower_ndcg@10": model_ndcg, "most_popular_ndcg@10": popular_ndcg},
    )
