"""Recommendation assets: per-user lists per model version, "because you watched", the live pointer."""

import datetime as dt
import json
import time
from typing import Literal

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from recsys_assets.feature_store.assets import ensure_live
from recsys_assets.recommendations import live
from recsys_assets.recommendations.inputs import catalog_state, global_trending, similarity_lists, trending_lists, user_histories
from recsys_assets.recommendations.ranking import RankingRules, cold_start_list, rank_for_user
from recsys_assets.recommendations.tables import BECAUSE_YOU_WATCHED_SCHEMA, USER_RECOMMENDATIONS_SCHEMA
from recsys_assets.retrieval.assets import load_index, materialize_view
from recsys_assets.retrieval.embeddings import embedding_matrix
from recsys_assets.training.artifacts import latest_version
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource, table_metadata

GROUP = "recommendations"
OWNERS = ["team:personalization"]


class RecommendationConfig(dg.Config):
    k: int = Field(default=50, description="Items per user")
    n_candidates: int = Field(default=300, description="ANN candidates per user before filtering")
    max_per_genre: int = Field(default=3, description="Max items of one primary genre in the top window")
    diversity_window: int = 10
    exploration_slots: int = Field(default=1, description="Top-window slots for new, rarely shown titles")
    exploration_position: int = 7
    new_title_days: int = Field(default=60, description="Titles released/launched within this many days are new")
    max_exploration_impressions_7d: int = Field(default=100, description="New titles shown less than this explore")
    history_days: int = Field(default=365, description="Days of history that define watched / thumbs-down items")

    def rules(self) -> RankingRules:
        return RankingRules(
            k=self.k,
            max_per_genre=self.max_per_genre,
            diversity_window=self.diversity_window,
            exploration_slots=self.exploration_slots,
            exploration_position=self.exploration_position,
        )


def _rows_table(rows: dict[str, list], schema: pa.Schema) -> pa.Table:
    return pa.table({name: pa.array(rows[name], type=schema.field(name).type) for name in schema.names}, schema=schema)


def _append(rows: dict[str, list], user_id: int, recs, source: str, at: dt.datetime, version: str) -> None:
    for rank, r in enumerate(recs, start=1):
        rows["user_id"].append(user_id)
        rows["rank"].append(rank)
        rows["item_id"].append(r.item_id)
        rows["score"].append(r.score)
        rows["retrieval_score"].append(r.retrieval_score)
        rows["is_exploration"].append(r.is_exploration)
        rows["source"].append(source)
        rows["generated_at"].append(at)
        rows["model_version"].append(version)


def generate_lists(
    user_ids: np.ndarray,
    user_vectors: np.ndarray,
    index,
    histories,
    state,
    trending: dict[str, list[int]],
    region: dict[int, str],
    kids: dict[int, bool],
    pool: list[int],
    pool_vectors: np.ndarray | None,
    rules: RankingRules,
    n_candidates: int,
    version: str,
    batch_size: int = 2048,
) -> tuple[pa.Table, int]:
    """Every user's list as USER_RECOMMENDATIONS_SCHEMA rows; returns (table, cold-start users).

    Users with history: ANN candidates, then filters, diversity and exploration. Users
    without: their region's trending list (then global, then popular), filtered likewise.
    """
    now = dt.datetime.now(dt.timezone.utc)
    rows: dict[str, list] = {n: [] for n in USER_RECOMMENDATIONS_SCHEMA.names}
    warm = [n for n, u in enumerate(user_ids) if histories.has_history(int(u))]
    for start in range(0, len(warm), batch_size):
        batch = warm[start : start + batch_size]
        scores, candidates = index.search(user_vectors[batch], n_candidates)
        explore = user_vectors[batch] @ pool_vectors.T if pool_vectors is not None else None
        for row, n in enumerate(batch):
            user_id = int(user_ids[n])
            ctx = histories.context(user_id, bool(kids.get(user_id)))
            exploration_scores = dict(zip(pool, explore[row].tolist())) if explore is not None else None
            recs = rank_for_user(candidates[row], scores[row], ctx, state.catalog, rules, exploration_scores)
            _append(rows, user_id, recs, "two_tower", now, version)
    warm_set = set(warm)
    cold_users = 0
    for n, u in enumerate(user_ids):
        if n in warm_set:
            continue
        user_id = int(u)
        ctx = histories.context(user_id, bool(kids.get(user_id)))
        recs = cold_start_list(ctx, trending.get(region.get(user_id), []), global_trending(trending), state.popular, state.catalog, rules)
        _append(rows, user_id, recs, "trending_cold_start", now, version)
        cold_users += 1
    return _rows_table(rows, USER_RECOMMENDATIONS_SCHEMA), cold_users


# Every user's home-page list from the current model, written under its version so a new
# model runs in shadow until it proves itself (live_recommendations promotes it).
@dg.asset(
    group_name=GROUP,
    kinds={"faiss", "delta"},
    owners=OWNERS,
    deps=["ann_index", "user_embeddings", "item_features", "trending_items", "raw_events", "users", "items"],
    # retrained daily at 04:00: warn after a missed day, fail after two
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=50), warn_window=dt.timedelta(hours=26)),
)
def user_recommendations(context: dg.AssetExecutionContext, config: RecommendationConfig, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """Top-50 items per user for the current model version: a few hundred ANN candidates, then
    filters (never watched or thumbs-down items, never above a kids profile's maturity limit,
    only available titles), a diversity cap (at most 3 of one primary genre in the top 10) and an
    exploration slot for a new, rarely shown title. Users without history get their region's
    trending list, filtered the same way.

    Grain: one row per (`model_version`, `user_id`, `rank`) with `score` (non-increasing down the
    list), `retrieval_score`, `is_exploration`, `source`, `generated_at`. Delta-partitioned by
    `model_version`: every version's lists stay (shadow, live, previous).
    """
    started = time.monotonic()
    rules = config.rules()
    users_emb = lakehouse.read("user_embeddings")
    version = users_emb.column("model_version")[0].as_py()
    index = load_index(lakehouse, version)
    state = catalog_state(lakehouse, config.new_title_days, config.max_exploration_impressions_7d)
    histories = user_histories(lakehouse, state.as_of, config.history_days)
    trending, trending_day = trending_lists(lakehouse)
    users = lakehouse.read("users", columns=["user_id", "region", "is_kids"])
    region = dict(zip(users.column("user_id").to_pylist(), users.column("region").to_pylist()))
    kids = dict(zip(users.column("user_id").to_pylist(), users.column("is_kids").to_pylist()))

    user_ids = users_emb.column("user_id").to_numpy()
    user_vectors = embedding_matrix(users_emb)
    items_emb = lakehouse.read("item_embeddings")
    item_position = {int(i): n for n, i in enumerate(items_emb.column("item_id").to_pylist())}
    pool = sorted(state.catalog.exploration_pool & set(item_position))
    pool_vectors = embedding_matrix(items_emb)[[item_position[i] for i in pool]] if pool else None

    table, cold_users = generate_lists(
        user_ids, user_vectors, index, histories, state, trending, region, kids, pool, pool_vectors, rules, config.n_candidates, version
    )
    table_version = lakehouse.overwrite_where("user_recommendations", table, "model_version", version, commit_metadata={"dagster_run_id": context.run.run_id})
    lengths = np.bincount(np.unique(table.column("user_id").to_numpy(), return_counts=True)[1]) if table.num_rows else np.array([0])
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, "user_recommendations", table_version),
            "model_version": version,
            "dagster/row_count": table.num_rows,
            "users": int(len(user_ids)),
            "cold_start_users": cold_users,
            "users_with_full_lists": int(lengths[config.k]) if len(lengths) > config.k else 0,
            "catalog_coverage": round(len(set(table.column("item_id").to_pylist())) / max(1, len(state.catalog.primary_genre)), 4),
            "exploration_slots_filled": int(sum(table.column("is_exploration").to_pylist())),
            "exploration_pool": len(pool),
            "catalog_as_of": state.as_of.isoformat(),
            "trending_as_of": trending_day.isoformat(),
            "seconds": round(time.monotonic() - started, 2),
        }
    )


class BecauseYouWatchedConfig(dg.Config):
    seeds_per_user: int = Field(default=3, description="Most recent positive items used as seeds")
    items_per_seed: int = Field(default=10)
    history_days: int = 365


# "Because you watched X" rows: explainable, and they work from a user's first watch.
@dg.asset(group_name=GROUP, kinds={"delta"}, owners=OWNERS, deps=["item_similarities", "item_features", "raw_events", "users", "items"])
def because_you_watched(context: dg.AssetExecutionContext, config: BecauseYouWatchedConfig, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """For each user's 3 most recent positive items (seeds), up to 10 similar titles from
    `item_similarities` (newest day), filtered like the main lists (never watched or
    thumbs-down, maturity for kids profiles, available only).

    Grain: one row per (`user_id`, `seed_item_id`, `rank`). Not partitioned: replaced each run;
    `similarities_date` says which similarities were used.
    """
    state = catalog_state(lakehouse)
    histories = user_histories(lakehouse, state.as_of, config.history_days)
    sims, sims_day = similarity_lists(lakehouse)
    users = lakehouse.read("users", columns=["user_id", "is_kids"])
    now = dt.datetime.now(dt.timezone.utc)
    rules = RankingRules(k=config.items_per_seed, exploration_slots=0, max_per_genre=config.items_per_seed)
    rows: dict[str, list] = {n: [] for n in BECAUSE_YOU_WATCHED_SCHEMA.names}
    for user_id, is_kids in zip(users.column("user_id").to_pylist(), users.column("is_kids").to_pylist()):
        ctx = histories.context(user_id, bool(is_kids))
        for seed_rank, seed in enumerate(histories.recent_positives.get(user_id, [])[: config.seeds_per_user], start=1):
            ids, scores = sims.get(seed, ([], []))
            for rank, rec in enumerate(rank_for_user(ids, scores, ctx, state.catalog, rules), start=1):
                for name, value in (
                    ("user_id", user_id), ("seed_item_id", seed), ("seed_rank", seed_rank), ("rank", rank),
                    ("item_id", rec.item_id), ("score", rec.score), ("generated_at", now), ("similarities_date", sims_day),
                ):  # fmt: skip
                    rows[name].append(value)
    table = _rows_table(rows, BECAUSE_YOU_WATCHED_SCHEMA)
    version = lakehouse.overwrite("because_you_watched", table, commit_metadata={"dagster_run_id": context.run.run_id})
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, "because_you_watched", version),
            "dagster/row_count": table.num_rows,
            "users_with_rows": len(set(rows["user_id"])),
            "similarities_date": sims_day.isoformat(),
        }
    )


class LiveRecommendationsConfig(dg.Config):
    action: Literal["promote", "rollback"] = Field(default="promote", description="promote a version, or roll back to the previous one")
    model_version: str | None = Field(default=None, description="Version to promote; default the newest trained version")
    force: bool = Field(default=False, description="Promote even if recommendation_eval's gate failed for that version")


def eval_record(lakehouse: LakehouseResource, version: str) -> dict | None:
    """The newest recommendation_eval gate record of a version (None if never evaluated)."""
    if not lakehouse.exists("recommendation_gates"):
        return None
    rows = lakehouse.read("recommendation_gates", filters=[("model_version", "=", version)]).sort_by("evaluated_at").to_pylist()
    return rows[-1] if rows else None


# The pointer serving follows: which version's lists users see. Moving it is a recorded
# decision (with both versions' metrics), and the previous version stays for rollback.
@dg.asset(
    group_name=GROUP,
    kinds={"delta", "feast"},
    owners=OWNERS,
    deps=["user_recommendations", "recommendation_eval", "feast_registry"],
)
def live_recommendations(
    context: dg.AssetExecutionContext, config: LiveRecommendationsConfig, lakehouse: LakehouseResource, feast: FeastResource
) -> dg.MaterializeResult:
    """The lists serving reads: one row per user (`item_ids`, `scores` in rank order,
    `model_version`), loaded into the Feast online store (view `user_recommendations`: one
    `get_online_features` call returns a user's list).

    Each materialization is a decision recorded in `recommendation_decisions`: `promote` a
    version that passed `recommendation_eval`'s gate (or the first version ever), or `rollback`
    to the version live before. Not partitioned; the table is swapped in one atomic commit.
    """
    ensure_live(lakehouse, "live_recommendations")
    current = live.live_version(lakehouse)
    if config.action == "rollback":
        target = live.rollback_target(lakehouse)
        if target is None:
            raise dg.Failure("nothing to roll back to: no earlier live version is recorded")
        reason = f"rollback from {current}"
    else:
        target = config.model_version or latest_version(lakehouse)
        if target is None:
            raise dg.Failure("no trained model version to promote")
        if target == current:
            context.log.info(f"{target} is already live")
            return dg.MaterializeResult(metadata={"model_version": target, "action": "none (already live)", "previous_version": current or "none"})
        record = eval_record(lakehouse, target)
        if current is not None and not config.force:
            if record is None:
                raise dg.Failure(f"{target} has not been evaluated against live {current}: materialize recommendation_eval first")
            if not record["gate_passed"]:
                raise dg.Failure(f"{target} failed the evaluation gate against live {current}: {record['gate_detail']}")
        reason = "first live version" if current is None else ("forced" if config.force else "passed the evaluation gate")
    record = eval_record(lakehouse, target) or {}
    previous_record = eval_record(lakehouse, current) if current else None

    def load_online(at: dt.datetime) -> None:
        materialize_view(feast, "user_recommendations", at - dt.timedelta(seconds=1), at + dt.timedelta(seconds=1))

    decision = live.promote(
        lakehouse,
        target,
        action=config.action,
        reason=reason,
        candidate_metrics=json.loads(record.get("candidate_metrics") or "{}"),
        previous_metrics=json.loads(previous_record["candidate_metrics"]) if previous_record else {},
        run_id=context.run.run_id,
        load_online=load_online,
    )
    context.log.info(f"{config.action}: {current} -> {target} ({reason})")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, live.LIVE_TABLE, decision["live_table_version"]),
            "action": config.action,
            "model_version": target,
            "previous_version": current or "none",
            "reason": reason,
            "users": decision["users"],
            "metrics": dg.MetadataValue.json(json.loads(decision["candidate_metrics"])),
            "previous_metrics": dg.MetadataValue.json(json.loads(decision["previous_metrics"])),
        }
    )
