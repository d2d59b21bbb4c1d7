"""Production configurations against the real local services: Feast SQL registry on
PostgreSQL with a Redis online store, and the Dagster instance on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

import dagster as dg
import pyarrow as pa
import pytest

from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.services
POSTGRES_URL = os.environ.get("RECSYS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("RECSYS_TEST_REDIS", "127.0.0.1:6379")


def _require(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        pytest.fail(
            f"{what} is not reachable on {host}:{port}: production-configuration tests need it "
            "(.ci/run starts a stopped PostgreSQL/Redis)"
        )


@pytest.fixture(scope="module")
def services():
    _require("127.0.0.1", 5432, "PostgreSQL")
    _require("127.0.0.1", 6379, "Redis")


def user_feature_rows(day: dt.date, users: list[int], events: int) -> pa.Table:
    from recsys_assets.features.transforms import USER_FEATURES_SCHEMA

    ts = dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=dt.timezone.utc)
    rows = []
    for u in users:
        row = {f.name: None for f in USER_FEATURES_SCHEMA}
        row.update(user_id=u, feature_timestamp=ts, feature_date=day, events_30d=events, positives_30d=events // 2, genre_affinity=[0.0] * 18)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=USER_FEATURES_SCHEMA)


def test_feast_sql_registry_on_postgres_and_redis_online(services, tmp_path):
    lakehouse = LakehouseResource(root_uri=str(tmp_path / "lakehouse"))
    day = dt.date(2024, 3, 10)
    lakehouse.overwrite_range("user_features", user_feature_rows(day, [1, 2], 7), day, day, column="feature_date")
    project = f"recsys_test_{uuid.uuid4().hex[:8]}"
    feast = FeastResource(
        project=project,
        registry_type="sql",
        registry_path=POSTGRES_URL,
        online_store_type="redis",
        redis_connection_string=f"{REDIS},db=2",
        sqlite_path=str(tmp_path / "unused.db"),
    )
    diff = feast.apply(lakehouse.root_uri)
    assert "FeatureView:user_features" in diff["applied"]
    store = feast.store()
    assert "user_features" in {v.name for v in store.list_feature_views()}  # read back from PostgreSQL
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    store.materialize(start_date=start, end_date=start + dt.timedelta(days=1), feature_views=["user_features"])
    online = store.get_online_features(features=["user_features:events_30d"], entity_rows=[{"user_id": 1}, {"user_id": 3}]).to_dict()
    assert online["events_30d"] == [7, None]
    # a second process sees the same registry (nothing is local)
    other = FeastResource(project=project, registry_type="sql", registry_path=POSTGRES_URL, online_store_type="redis", redis_connection_string=f"{REDIS},db=2")
    assert other.store().get_online_features(features=["user_features:events_30d"], entity_rows=[{"user_id": 2}]).to_dict()["events_30d"] == [7]
    store.teardown()


def test_dagster_instance_on_postgres(services, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    # the same file as deploy/dagster-production.yaml, with the URL filled in
    template = (PROJECT_ROOT / "deploy" / "dagster-production.yaml").read_text()
    (home / "dagster.yaml").write_text(template)

    @dg.asset
    def tiny() -> int:
        return 1

    monkeypatch.setenv("DAGSTER_POSTGRES_URL", os.environ.get("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize([tiny], instance=instance)
        assert result.success
        record = instance.get_latest_materialization_event(dg.AssetKey("tiny"))
        assert record is not None and record.run_id == result.run_id
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        instance.dispose()
