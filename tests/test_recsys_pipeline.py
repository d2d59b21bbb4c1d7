"""The whole graph on a small simulated platform: features -> model -> index -> lists -> eval -> live.

One pipeline per module; tests read it from different angles. The last test trains
further versions to exercise the evaluation gate, promotion and rollback.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import dagster as dg
import pyarrow.compute as pc
import pytest

from recsys_assets.recommendations import live
from recsys_assets.recommendations.inputs import WATCHED_EVENT_TYPES, catalog_state
from recsys_assets.runner import run_job
from recsys_assets.sources.simulator import simulate, write_landing
from recsys_assets.training.artifacts import latest_version
from recsys_assets.vocabulary import allowed_for_kids
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from resources.landing import LandingZoneResource
from tests.conftest import SIM_END_DAY, small_sim_config

pytestmark = pytest.mark.slow
DAYS = 14
START = SIM_END_DAY - dt.timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, spark_resource):
    from recsys_assets.definitions import build_defs

    home = tmp_path_factory.mktemp("recsys")
    lakehouse = LakehouseResource(root_uri=str(home / "lakehouse"))
    landing = LandingZoneResource(root_uri=str(home / "landing"))
    feast = FeastResource(registry_path=str(home / "feast" / "registry.db"), sqlite_path=str(home / "feast" / "online.db"))
    # strong latent structure: tastes drive clicks, popularity varies little
    world = simulate(
        small_sim_config(
            n_users=200, n_items=120, n_days=DAYS, kids_share=0.2, new_item_share=0.1, seed=5,
            popularity_sigma=0.3, click_scale=7.0, sessions_per_user_day=0.8,
        )
    )  # fmt: skip
    write_landing(world, landing.store())
    defs = build_defs({"lakehouse": lakehouse, "landing": landing, "spark": spark_resource, "feast": feast})
    run_job(defs, "daily_job", days=(START, SIM_END_DAY), log_level="WARNING")
    result = run_job(defs, "training_job", log_level="WARNING")

    class P:
        pass

    p = P()
    p.lakehouse, p.feast, p.defs, p.world, p.result = lakehouse, feast, defs, world, result
    p.promotion = promote_if_passed(p)
    p.version = latest_version(lakehouse)
    recs = lakehouse.read("user_recommendations", filters=[("model_version", "=", p.version)])
    p.lists = defaultdict(list)
    for row in recs.sort_by([("user_id", "ascending"), ("rank", "ascending")]).to_pylist():
        p.lists[row["user_id"]].append(row)
    return p


def promote_if_passed(p):
    """One tick of model_cutover_sensor; run what it requests (the daemon would launch it)."""
    from recsys_assets.automation.sensors import model_cutover_sensor

    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources={"lakehouse": p.lakehouse})
    result = model_cutover_sensor.evaluate_tick(context)
    if not result.run_requests:
        return None
    (request,) = result.run_requests
    return run_job(p.defs, "promote_recommendations_job", run_config=request.run_config, log_level="WARNING")


def materializations(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def test_graph_ran_with_checks_passing(pipeline):
    mats = materializations(pipeline.result)
    expected = {
        "training_examples", "two_tower_model", "item_embeddings", "user_embeddings", "ann_index",
        "user_recommendations", "because_you_watched", "recommendation_eval",
    }  # fmt: skip
    assert expected <= set(mats)
    assert "live_recommendations" in materializations(pipeline.promotion)  # the first version goes live
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in pipeline.result.get_asset_check_evaluations()}
    assert checks[("ann_index", "recall_at_10_vs_exact")].passed
    assert checks[("ann_index", "recall_at_10_vs_exact")].metadata["recall_at_10"].value >= 0.95
    assert checks[("recommendation_eval", "not_worse_than_live")].passed
    model = mats["two_tower_model"]
    assert model["model_version"].value == pipeline.version
    assert pipeline.lakehouse.artifact_exists(f"models/{pipeline.version}/model.pt")
    assert pipeline.lakehouse.artifact_exists(f"indexes/{pipeline.version}/index.faiss")
    assert "| epoch |" in model["training_progress"].value  # progress shows in the UI


def history(pipeline):
    events = pipeline.lakehouse.read("raw_events", columns=["user_id", "item_id", "event_type"])
    watched, down = defaultdict(set), defaultdict(set)
    for u, i, t in zip(*(events.column(c).to_pylist() for c in ("user_id", "item_id", "event_type"))):
        if t in WATCHED_EVENT_TYPES:
            watched[u].add(i)
        if t == "thumbs_down":
            down[u].add(i)
    return watched, down


def test_lists_never_hold_watched_thumbs_down_unavailable_or_over_age_items(pipeline):
    watched, down = history(pipeline)
    state = catalog_state(pipeline.lakehouse)
    items = pipeline.lakehouse.read("items", columns=["item_id", "maturity_rating"])
    rating = dict(zip(items.column("item_id").to_pylist(), items.column("maturity_rating").to_pylist()))
    users = pipeline.lakehouse.read("users", columns=["user_id", "is_kids"])
    kids = {u for u, k in zip(users.column("user_id").to_pylist(), users.column("is_kids").to_pylist()) if k}
    assert kids and len(pipeline.lists) == users.num_rows
    for user, rows in pipeline.lists.items():
        ids = [r["item_id"] for r in rows]
        assert len(ids) == len(set(ids)), user  # no duplicates
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert all(a["score"] >= b["score"] for a, b in zip(rows, rows[1:]))
        assert not set(ids) & watched[user] and not set(ids) & down[user]
        assert set(ids) <= state.catalog.available
        if user in kids:
            assert all(allowed_for_kids(rating[i]) for i in ids), user
    adults = [rows for user, rows in pipeline.lists.items() if user not in kids]
    assert sum(len(rows) == 50 for rows in adults) > 0.9 * len(adults)  # kids lists are shorter: fewer titles qualify


def test_diversity_cap_and_exploration_slot(pipeline):
    state = catalog_state(pipeline.lakehouse)
    genre = state.catalog.primary_genre
    for rows in pipeline.lists.values():
        if len(rows) == 50:
            counts = Counter(genre[r["item_id"]] for r in rows[:10])
            assert max(counts.values()) <= 3
    explored = [(r["rank"], r["item_id"]) for rows in pipeline.lists.values() for r in rows if r["is_exploration"]]
    assert explored, "new titles should get exploration slots"
    assert all(rank == 8 for rank, _ in explored)
    assert {i for _, i in explored} <= state.catalog.exploration_pool


def test_cold_start_users_get_their_regional_trending_list(pipeline):
    cold = {u: rows for u, rows in pipeline.lists.items() if rows[0]["source"] == "trending_cold_start"}
    assert cold, "the simulation has users without history"
    trending = pipeline.lakehouse.read("trending_items")
    newest = pc.max(trending.column("feature_date")).as_py()
    lists = {r["region"]: r["item_ids"] for r in trending.filter(pc.equal(trending.column("feature_date"), newest)).to_pylist()}
    users = pipeline.lakehouse.read("users", columns=["user_id", "region", "is_kids"]).to_pylist()
    info = {u["user_id"]: u for u in users}
    state = catalog_state(pipeline.lakehouse)
    for user, rows in cold.items():
        regional = [i for i in lists.get(info[user]["region"], []) if i in state.catalog.available]
        if info[user]["is_kids"]:
            continue  # kids filtering may skip regional titles; checked in the filter test
        got = [r["item_id"] for r in rows]
        assert got[: min(3, len(regional))] == regional[: min(3, len(regional))]


def test_one_online_call_returns_a_users_list(pipeline):
    user = next(iter(pipeline.lists))
    store = pipeline.feast.store()
    online = store.get_online_features(
        features=["user_recommendations:item_ids", "user_recommendations:scores", "user_recommendations:model_version"],
        entity_rows=[{"user_id": user}],
    ).to_dict()
    assert online["item_ids"][0] == [r["item_id"] for r in pipeline.lists[user]]
    assert online["model_version"] == [pipeline.version]
    embeddings = store.get_online_features(features=["item_embeddings:embedding"], entity_rows=[{"item_id": 1}]).to_dict()
    assert len(embeddings["embedding"][0]) == 64


def test_evaluation_table_against_baselines(pipeline):
    rows = pipeline.lakehouse.read("recommendation_eval", filters=[("model_version", "=", pipeline.version)]).to_pylist()
    table = {(r["model"], r["metric"]): r["value"] for r in rows}
    models = {m for m, _ in table}
    assert {"two_tower", "most_popular", "als", "ease", "cooccurrence"} <= models
    assert {m for _, m in table} == {"ndcg@10", "recall@10", "precision@10", "map@10", "coverage", "novelty"}
    # strong latent structure: the model clearly beats popularity
    assert table[("two_tower", "ndcg@10")] > 1.5 * table[("most_popular", "ndcg@10")]
    assert table[("two_tower", "recall@10")] > table[("most_popular", "recall@10")] + 0.05


def test_because_you_watched(pipeline):
    rows = pipeline.lakehouse.read("because_you_watched").to_pylist()
    assert rows
    watched, down = history(pipeline)
    for r in rows:
        assert r["item_id"] != r["seed_item_id"]
        assert r["item_id"] not in watched[r["user_id"]] and r["item_id"] not in down[r["user_id"]]


def test_gate_blocks_a_worse_version_then_promotion_and_rollback(pipeline):
    first = pipeline.version
    assert live.live_version(pipeline.lakehouse) == first

    def train(**model_config):
        config = {"ops": {"two_tower_model": {"config": model_config}}} if model_config else None
        return run_job(pipeline.defs, "training_job", run_config=config, raise_on_error=False, log_level="WARNING")

    # a barely trained model: the gate fails and the cutover sensor requests nothing
    bad = train(max_epochs=1, lr=1e-5, use_features=False)
    gate = {c.check_name: c for c in bad.get_asset_check_evaluations() if c.asset_key.to_user_string() == "recommendation_eval"}
    assert not gate["not_worse_than_live"].passed
    assert promote_if_passed(pipeline) is None
    bad_version = latest_version(pipeline.lakehouse)
    assert bad_version != first and live.live_version(pipeline.lakehouse) == first
    # its lists exist in shadow
    assert pipeline.lakehouse.read("user_recommendations", filters=[("model_version", "=", bad_version)]).num_rows > 0

    # an equally good model (another seed) passes and the sensor promotes it
    train(seed=7)
    second = latest_version(pipeline.lakehouse)
    assert "live_recommendations" in materializations(promote_if_passed(pipeline))
    assert promote_if_passed(pipeline) is None  # a re-tick requests nothing
    assert live.live_version(pipeline.lakehouse) == second != first
    decision = live.decisions(pipeline.lakehouse)[-1]
    assert decision["previous_version"] == first and decision["action"] == "promote"
    assert "ndcg@10" in decision["candidate_metrics"] and "ndcg@10" in decision["previous_metrics"]

    # rollback restores the first version, online too
    run_job(pipeline.defs, "rollback_recommendations_job", log_level="WARNING")
    assert live.live_version(pipeline.lakehouse) == first
    user = next(iter(pipeline.lists))
    online = pipeline.feast.store().get_online_features(features=["user_recommendations:model_version"], entity_rows=[{"user_id": user}]).to_dict()
    assert online["model_version"] == [first]
