"""simulate -> ingestion -> features -> feast_registry -> online_features, then Feast reads.

One pipeline run per module (real Spark, Delta, Feast with the Delta-aware DuckDB offline
store and a sqlite online store); each test reads it from a different angle.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.compute as pc
import pytest

from recsys_assets.runner import run_job
from recsys_assets.sources.simulator import simulate, write_landing
from resources.feast import FEATURE_REPO, FeastResource
from resources.lakehouse import LakehouseResource
from resources.landing import LandingZoneResource
from tests.conftest import SIM_END_DAY, small_sim_config

pytestmark = pytest.mark.slow

START = SIM_END_DAY - dt.timedelta(days=5)
USER_FEATURES = ["events_30d", "positives_30d", "days_since_last_activity", "genre_affinity"]


class Pipeline:
    def __init__(self, home: Path, make_defs):
        self.home = home
        self.lakehouse = LakehouseResource(root_uri=str(home / "lakehouse"))
        self.landing = LandingZoneResource(root_uri=str(home / "landing"))
        self.feast = FeastResource(registry_path=str(home / "feast" / "registry.db"), sqlite_path=str(home / "feast" / "online_store.db"))
        self.world = simulate(small_sim_config())
        write_landing(self.world, self.landing.store())
        self.defs = make_defs(self.lakehouse, self.landing, feast=self.feast)

    def run(self, first: dt.date, last: dt.date):
        return run_job(self.defs, "daily_job", days=(first, last))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, spark_resource):
    from recsys_assets.definitions import build_defs

    def make_defs(lakehouse, landing, **extra):
        return build_defs({"lakehouse": lakehouse, "landing": landing, "spark": spark_resource, **extra})

    p = Pipeline(tmp_path_factory.mktemp("home"), make_defs)
    p.result = p.run(START, SIM_END_DAY)
    return p


def materializations(result) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def latest_user_row(lakehouse: LakehouseResource, user_id: int) -> dict:
    t = lakehouse.read("user_features")
    rows = t.filter(pc.equal(t.column("user_id"), user_id)).sort_by([("feature_date", "descending")]).to_pylist()
    return rows[0]


def test_every_feature_asset_and_check_ran(pipeline):
    assert pipeline.result.success
    mats = materializations(pipeline.result)
    for name in ("user_daily_activity", "user_features", "item_features", "item_similarities", "trending_items", "feast_registry", "online_features"):
        assert name in mats, name
    checks = pipeline.result.get_asset_check_evaluations()
    blocking = [c for c in checks if c.severity == dg.AssetCheckSeverity.ERROR]
    assert blocking and all(c.passed for c in blocking), [c.check_name for c in blocking if not c.passed]
    assert {c.check_name for c in checks} == {
        "row_count", "not_null_keys", "unique_key", "gx_raw_events", "gx_user_features", "gx_item_features",
        "feature_drift", "null_rate", "dead_letter_rate",
    }  # fmt: skip
    assert mats["item_features"]["dagster/row_count"].value == 80 * 6  # every catalog item, every day


def test_incomplete_window_still_materializes_and_says_so(pipeline):
    meta = materializations(pipeline.result)["user_features"]
    assert meta["window_complete"].value is False
    incomplete = meta["incomplete_partitions"].value
    assert incomplete[START.isoformat()] == 1 and incomplete[SIM_END_DAY.isoformat()] == 6


def test_online_features_match_the_latest_offline_row(pipeline):
    store = pipeline.feast.store()
    user_id = int(pipeline.world.events["user_id"].value_counts().index[0])
    online = store.get_online_features(
        features=[f"user_features:{f}" for f in USER_FEATURES] + ["trending:item_ids"],
        entity_rows=[{"user_id": user_id, "region": "GLOBAL"}],
    ).to_dict()
    expected = latest_user_row(pipeline.lakehouse, user_id)
    assert online["events_30d"] == [expected["events_30d"]]
    assert online["positives_30d"] == [expected["positives_30d"]]
    assert online["genre_affinity"][0] == pytest.approx(expected["genre_affinity"])
    trending = pipeline.lakehouse.read_range("trending_items", SIM_END_DAY, SIM_END_DAY, column="feature_date")
    global_row = trending.filter(pc.equal(trending.column("region"), "GLOBAL")).to_pylist()[0]
    assert online["item_ids"] == [global_row["item_ids"]]


def test_point_in_time_training_frame(pipeline):
    """Rows at time t see features from days at or before t, and duplicate rows all come back."""
    store = pipeline.feast.store()
    user_id = int(pipeline.world.events["user_id"].value_counts().index[0])
    day = SIM_END_DAY - dt.timedelta(days=2)
    noon = pd.Timestamp(dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc))
    entity_df = pd.DataFrame(
        {
            "user_id": [user_id, user_id, user_id],
            "item_id": [1, 1, 2],
            "event_timestamp": [noon, noon, noon],  # three rows, two identical
        }
    )
    frame = store.get_historical_features(entity_df=entity_df, features=store.get_feature_service("two_tower_training")).to_df()
    assert len(frame) == 3
    t = pipeline.lakehouse.read("user_features")
    rows = {r["feature_date"]: r for r in t.filter(pc.equal(t.column("user_id"), user_id)).to_pylist()}
    # day D's row (timestamp D 23:59:59.999999) is after noon of D: the frame must use D-1's row
    prior = max(d for d in rows if d < day)
    assert set(frame["events_30d"]) == {rows[prior]["events_30d"]}
    if day in rows:
        assert rows[day]["events_30d"] != rows[prior]["events_30d"] or rows[day]["feature_timestamp"] > noon
    assert frame["popularity_30d"].notna().all()  # item features joined too


def test_overwritten_partition_is_what_the_offline_store_returns(pipeline):
    """A late event re-materializes a day; get_historical_features then returns the new values."""
    store = pipeline.feast.store()
    user_id = int(pipeline.world.users.loc[0, "user_id"])
    day = SIM_END_DAY - dt.timedelta(days=1)
    after_day = pd.Timestamp(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), tzinfo=dt.timezone.utc))
    entity_df = pd.DataFrame({"user_id": [user_id], "item_id": [1], "event_timestamp": [after_day]})

    def events_30d():
        frame = store.get_historical_features(entity_df=entity_df, features=["user_features:events_30d"]).to_df()
        value = frame["events_30d"].iloc[0]
        return 0 if pd.isna(value) else int(value)

    before = events_30d()
    late = [
        json.dumps(
            {
                "event_id": f"late-{i}", "user_id": user_id, "item_id": 1, "event_type": "play",
                "occurred_at": f"{day.isoformat()}T10:00:0{i}Z", "ingested_at": f"{SIM_END_DAY.isoformat()}T09:00:00Z",
                "value": 60.0, "context": {"device": "tv"},
            }
        )
        for i in range(3)
    ]  # fmt: skip
    pipeline.landing.store().write_bytes(f"events/dt={SIM_END_DAY.isoformat()}/hour=09/late-batch.jsonl", ("\n".join(late) + "\n").encode())
    version = pipeline.lakehouse.version("user_features")
    pipeline.run(day, day)
    assert pipeline.lakehouse.version("user_features") > version
    assert events_30d() == before + 3


def test_feast_cli_apply_and_materialize_incremental(pipeline, tmp_path):
    env = {**os.environ, "RECSYS_HOME": str(pipeline.home), "FEAST_USAGE": "False"}
    env.pop("RECSYS_LAKEHOUSE_URI", None)
    feast_bin = str(Path(sys.executable).parent / "feast")
    yaml_file = str(pipeline.feast.cli_yaml_path())
    assert Path(yaml_file).exists()  # written by the feast_registry asset
    for args in (["apply"], ["materialize-incremental", f"{SIM_END_DAY.isoformat()}T23:59:59"]):
        done = subprocess.run([feast_bin, "-c", str(FEATURE_REPO), "-f", yaml_file, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    views = pipeline.feast.store().list_feature_views()
    assert {"user_features", "item_features", "item_similarities", "trending"} <= {v.name for v in views}


def test_registry_apply_removes_objects_deleted_from_the_repo(pipeline, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FEATURE_REPO / "feature_store.yaml", repo)
    (repo / "recsys_features.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('_orig_repo', {str(FEATURE_REPO / 'recsys_features.py')!r})\n"
        "orig = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(orig)\n"
        "from feast import FeatureService\n"
        "def build(uri):\n"
        "    objs = orig.build(uri)\n"
        "    objs.pop('trending')\n"
        "    objs['serving'] = FeatureService(name='serving', features=[objs['user_features'], objs['item_features']])\n"
        "    return objs\n"
    )
    trimmed = FeastResource(repo_path=str(repo), registry_path=pipeline.feast.registry_path, sqlite_path=pipeline.feast.sqlite_path)
    diff = trimmed.apply(pipeline.lakehouse.root_uri)
    assert "FeatureView:trending" in diff["deleted"]
    assert "trending" not in {v.name for v in trimmed.store().list_feature_views()}
    pipeline.feast.apply(pipeline.lakehouse.root_uri)  # restore for other tests
    assert "trending" in {v.name for v in pipeline.feast.store().list_feature_views()}


def test_realtime_activity_push(pipeline):
    from recsys_assets.feature_store.realtime import push_user_activity

    now = dt.datetime(2024, 3, 11, 20, 0, tzinfo=dt.timezone.utc)
    events = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "item_id": [10, 11, 10, 12],
            "event_type": ["play", "play", "complete", "impression"],
            "occurred_at": [now - dt.timedelta(minutes=30), now - dt.timedelta(minutes=2), now - dt.timedelta(minutes=1), now],
        }
    )
    store = pipeline.feast.store()
    assert push_user_activity(store, events, now) == 2
    online = store.get_online_features(
        features=["user_realtime_activity:recently_watched", "user_realtime_activity:events_last_5m", "user_realtime_activity:plays_last_5m"],
        entity_rows=[{"user_id": 1}, {"user_id": 2}],
    ).to_dict()
    assert online["recently_watched"] == [[10, 11], []]
    assert online["events_last_5m"] == [2, 1] and online["plays_last_5m"] == [1, 0]
