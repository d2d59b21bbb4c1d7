"""Real Feast over real Delta tables through ``DeltaDuckDBOfflineStore``.

Local provider, the Delta-aware DuckDB offline store, a sqlite online store and a
file registry, all in pytest tmp dirs; Delta tables written with
``deltalake.write_deltalake``, partitioned by ``event_date``.
"""

from __future__ import annotations

import gc
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RepoConfig,
)
from feast.data_format import DeltaFormat, ParquetFormat
from feast.infra.offline_stores.offline_utils import get_offline_store_from_config
from feast.types import Array, Float32, Float64, Int64, String
from feast.value_type import ValueType

from recsys_assets.feature_store.delta_offline_store import (
    OFFLINE_STORE_TYPE,
    DeltaDuckDBOfflineStore,
    DeltaDuckDBOfflineStoreConfig,
    delta_dataset,
    normalize_timestamps,
    read_delta_snapshot,
    storage_options,
)

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
DAY1 = datetime(2024, 1, 1, 10, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
DAY4 = DAY1 + timedelta(days=3)
TTL = timedelta(days=2)


def emb(user: int, day: int) -> list[float]:
    return [float(user), float(day), 0.5]


def user_rows(rows: list[tuple[int, datetime, int, float]]) -> pa.Table:
    """(user_id, event_timestamp, plays_7d, avg_rating) -> an Arrow table of the Delta schema."""
    return pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], TS),
            "event_date": pa.array([r[1].date() for r in rows], pa.date32()),
            "plays_7d": pa.array([r[2] for r in rows], pa.int64()),
            "avg_rating": pa.array([r[3] for r in rows], pa.float64()),  # feature `mean_rating`
            "embedding": pa.array([emb(r[0], r[1].day) for r in rows], pa.list_(pa.float32())),
        }
    )


def write_partition(uri: str, rows, *, day: datetime | None = None) -> None:
    """Append rows, or with ``day`` atomically replace that event_date partition."""
    if day is None:
        write_deltalake(uri, user_rows(rows), mode="append", partition_by=["event_date"])
    else:
        write_deltalake(
            uri,
            user_rows(rows),
            mode="overwrite",
            predicate=f"event_date = '{day.date().isoformat()}'",
            partition_by=["event_date"],
        )


def initial_rows():
    return [
        (1, DAY1, 10, 4.0),
        (2, DAY1, 11, 3.0),
        (3, DAY1, 12, 2.0),
        (1, DAY2, 20, 4.1),
        (2, DAY2, 21, 3.1),
        (1, DAY3, 30, 4.2),  # a later row that must not leak into earlier entity rows
    ]


def build_repo(root: Path) -> tuple[FeatureStore, str]:
    lake = root / "lake"
    users_uri = str(lake / "user_features")
    write_deltalake(users_uri, user_rows(initial_rows()), partition_by=["event_date"])

    profile_path = str(lake / "user_profile.parquet")  # Parquet source: the parent's reader
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2, 3], pa.int64()),
                "country": ["DE", "FR", "US"],
                "ts": pa.array([DAY1 - timedelta(days=30)] * 3, TS),
            }
        ),
        profile_path,
    )

    repo = root / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        f"""\
project: delta_test
provider: local
registry: {repo / 'registry.db'}
offline_store:
  type: {OFFLINE_STORE_TYPE}
online_store:
  type: sqlite
  path: {repo / 'online.db'}
entity_key_serialization_version: 3
"""
    )
    store = FeatureStore(repo_path=str(repo))

    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    stats = FeatureView(
        name="user_stats",
        entities=[user],
        ttl=TTL,
        schema=[
            # Declaring the join key spares `apply` from inferring it from the source,
            # which Feast does with AWS_ENDPOINT_URL="None" (breaks on s3:// sources).
            Field(name="user_id", dtype=Int64),
            Field(name="plays_7d", dtype=Int64),
            Field(name="mean_rating", dtype=Float64),
            Field(name="embedding", dtype=Array(Float32)),
        ],
        source=FileSource(
            name="user_features",
            path=users_uri,
            file_format=DeltaFormat(),
            timestamp_field="event_timestamp",
            field_mapping={"avg_rating": "mean_rating"},
        ),
    )
    profile = FeatureView(
        name="user_profile",
        entities=[user],
        ttl=timedelta(0),
        schema=[Field(name="user_id", dtype=Int64), Field(name="country", dtype=String)],
        source=FileSource(
            name="user_profile", path=profile_path, file_format=ParquetFormat(), timestamp_field="ts"
        ),
        online=False,
    )
    service = FeatureService(name="user_service", features=[stats[["plays_7d", "embedding"]], profile])
    store.apply([user, stats, profile, service])
    return store, users_uri


@pytest.fixture(scope="module", autouse=True)
def _release_ibis_duckdb():
    """Close ibis' default DuckDB connection after this module (it holds the memtables).

    Otherwise duckdb 2.0's nanobind bindings print "leaked instance" noise at exit.
    """
    yield
    if ibis.options.default_backend is not None:
        ibis.options.default_backend.disconnect()
        ibis.options.default_backend = None
    gc.collect()


@pytest.fixture()
def repo(tmp_path):
    return build_repo(tmp_path)


def historical(store: FeatureStore, rows, features=None, **kwargs) -> pd.DataFrame:
    entity_df = pd.DataFrame(
        {"user_id": [r[0] for r in rows], "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True)}
    )
    refs = features or ["user_stats:plays_7d", "user_stats:mean_rating", "user_stats:embedding"]
    df = store.get_historical_features(entity_df=entity_df, features=refs, **kwargs).to_df()
    return df.sort_values(["event_timestamp", "user_id"], kind="stable").reset_index(drop=True)


def value(df: pd.DataFrame, user_id: int, ts: datetime, column: str = "plays_7d"):
    hits = df[(df.user_id == user_id) & (df.event_timestamp == pd.Timestamp(ts))][column]
    assert len(hits) >= 1, (user_id, ts)
    return hits.iloc[0]


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


# ------------------------------------------------------------------------- config
def test_yaml_and_python_config_select_the_store(repo, tmp_path):
    store, _ = repo
    assert isinstance(store.config.offline_store, DeltaDuckDBOfflineStoreConfig)
    assert isinstance(get_offline_store_from_config(store.config.offline_store), DeltaDuckDBOfflineStore)

    for offline in (DeltaDuckDBOfflineStoreConfig(), {"type": OFFLINE_STORE_TYPE}):
        config = RepoConfig(
            project="p",
            provider="local",
            registry=str(tmp_path / "r.db"),
            offline_store=offline,
            online_store={"type": "sqlite", "path": str(tmp_path / "o.db")},
            entity_key_serialization_version=3,
        )
        assert isinstance(get_offline_store_from_config(config.offline_store), DeltaDuckDBOfflineStore)


# ---------------------------------------------------------------- historical reads
def test_partition_overwrite_is_seen(repo):
    store, uri = repo
    t = DAY2 + timedelta(hours=2)
    before = historical(store, [(1, t), (2, t)])
    assert value(before, 1, t) == 20 and value(before, 2, t) == 21

    # Re-run of the DAY2 partition: user 1 changes, user 2 disappears from that day.
    write_partition(uri, [(1, DAY2, 200, 5.0)], day=DAY2)

    after = historical(store, [(1, t), (2, t)])
    assert value(after, 1, t) == 200
    assert value(after, 1, t, "mean_rating") == pytest.approx(5.0)
    assert value(after, 2, t) == 11  # falls back to DAY1; the removed file is not read


def test_point_in_time_correctness_and_ttl(repo):
    store, _ = repo
    just_before_day2 = DAY2 - timedelta(seconds=1)
    expired = DAY1 + TTL + timedelta(seconds=1)
    rows = [
        (1, just_before_day2),  # DAY2 and DAY3 rows exist and must not leak
        (1, DAY2),  # a row at exactly t is visible
        (1, DAY3 - timedelta(microseconds=1)),
        (3, DAY1 + TTL),  # exactly at the TTL edge: still valid
        (3, expired),  # user 3's only row is older than the TTL
        (2, DAY1 - timedelta(hours=1)),  # before any data
    ]
    df = historical(store, rows)
    assert len(df) == len(rows)
    assert value(df, 1, just_before_day2) == 10
    assert value(df, 1, DAY2) == 20
    assert value(df, 1, DAY3 - timedelta(microseconds=1)) == 20
    assert value(df, 3, DAY1 + TTL) == 12
    assert is_missing(value(df, 3, expired))
    assert is_missing(value(df, 2, DAY1 - timedelta(hours=1)))


def test_duplicate_entity_rows_and_unknown_entities_are_kept(repo):
    store, _ = repo
    t = DAY2 + timedelta(hours=1)
    rows = [(2, t), (2, t), (2, t), (999, t), (1, t)]
    df = historical(store, rows)
    assert len(df) == len(rows)
    assert list(df[df.user_id == 2]["plays_7d"]) == [21, 21, 21]
    unknown = df[df.user_id == 999].iloc[0]
    assert is_missing(unknown["plays_7d"]) and is_missing(unknown["mean_rating"])
    assert unknown["embedding"] is None or len(unknown["embedding"]) == 0 or is_missing(unknown["embedding"])


def test_embedding_round_trips_offline(repo):
    store, _ = repo
    t = DAY3 + timedelta(hours=1)
    df = historical(store, [(1, t), (2, t)])
    np.testing.assert_allclose(np.asarray(value(df, 1, t, "embedding"), dtype=np.float32), emb(1, 3))
    np.testing.assert_allclose(np.asarray(value(df, 2, t, "embedding"), dtype=np.float32), emb(2, 2))


def test_feature_service_with_delta_and_parquet_sources(repo):
    store, _ = repo
    t = DAY2 + timedelta(hours=1)
    df = historical(store, [(1, t), (3, t), (42, t)], features=store.get_feature_service("user_service"))
    assert {"plays_7d", "embedding", "country"} <= set(df.columns)
    assert "mean_rating" not in df.columns
    assert value(df, 1, t) == 20 and value(df, 1, t, "country") == "DE"
    assert value(df, 3, t) == 12 and value(df, 3, t, "country") == "US"
    assert is_missing(value(df, 42, t)) and is_missing(value(df, 42, t, "country"))


def test_full_feature_names(repo):
    store, _ = repo
    t = DAY2 + timedelta(hours=1)
    df = historical(store, [(1, t)], full_feature_names=True)
    assert value(df, 1, t, "user_stats__plays_7d") == 20


# ------------------------------------------------------------------ materialization
def online(store: FeatureStore, users) -> dict:
    return store.get_online_features(
        features=["user_stats:plays_7d", "user_stats:mean_rating", "user_stats:embedding"],
        entity_rows=[{"user_id": u} for u in users],
    ).to_dict()


def test_materialize_then_incremental_into_sqlite(repo):
    store, uri = repo
    store.materialize(start_date=DAY1 - timedelta(days=1), end_date=DAY2 + timedelta(hours=12))
    got = online(store, [1, 2, 3, 999])
    assert got["plays_7d"] == [20, 21, 12, None]  # DAY3 is outside the window
    assert got["mean_rating"][:3] == pytest.approx([4.1, 3.1, 2.0])
    np.testing.assert_allclose(np.asarray(got["embedding"][0], dtype=np.float32), emb(1, 2))

    write_partition(uri, [(2, DAY4, 41, 3.4), (3, DAY4, 42, 2.4)])  # a new day arrives
    store.materialize_incremental(end_date=DAY4 + timedelta(hours=1))
    got = online(store, [1, 2, 3])
    assert got["plays_7d"] == [30, 41, 42]
    for user, day, vec in zip([1, 2, 3], [3, 4, 4], got["embedding"]):
        assert len(vec) == 3
        np.testing.assert_allclose(np.asarray(vec, dtype=np.float32), emb(user, day))


def test_materialize_sees_partition_overwrite(repo):
    store, uri = repo
    write_partition(uri, [(1, DAY3, 300, 4.9)], day=DAY3)
    store.materialize(start_date=DAY1 - timedelta(days=1), end_date=DAY4)
    assert online(store, [1])["plays_7d"] == [300]


# ------------------------------------------------------------------------ the scan
def test_time_range_prunes_partitions_and_filters_rows(tmp_path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, user_rows(initial_rows()), partition_by=["event_date"])
    source = FileSource(path=uri, file_format=DeltaFormat(), timestamp_field="event_timestamp")

    everything, _ = delta_dataset(source)
    assert len(everything.files) == 3

    window = (DAY2 - timedelta(hours=1), DAY2 + timedelta(hours=1))
    dataset, _ = delta_dataset(source, timestamp_field="event_timestamp", time_range=window)
    assert len(dataset.files) == 1 and "event_date=2024-01-02" in dataset.files[0]

    table = read_delta_snapshot(
        source,
        columns=["user_id", "plays_7d", "event_timestamp"],
        timestamp_field="event_timestamp",
        time_range=(DAY1 + timedelta(minutes=1), None),  # prunes DAY1, keeps DAY2 and DAY3
    )
    assert table.column_names == ["user_id", "event_timestamp", "plays_7d"]
    assert sorted(table.column("plays_7d").to_pylist()) == [20, 21, 30]
    assert table.schema.field("event_timestamp").type == TS


def test_relative_path_is_resolved_against_the_repo(tmp_path):
    write_deltalake(str(tmp_path / "rel"), user_rows(initial_rows()[:1]), partition_by=["event_date"])
    source = FileSource(path="rel", file_format=DeltaFormat(), timestamp_field="event_timestamp")
    assert read_delta_snapshot(source, str(tmp_path)).num_rows == 1


def test_timestamps_become_utc_microseconds():
    ns = pa.array([1_700_000_000_123_456_789], pa.timestamp("ns"))
    out = normalize_timestamps(pa.table({"naive_ns": ns, "paris": ns.cast(pa.timestamp("ns", tz="Europe/Paris"))}))
    assert all(f.type == TS for f in out.schema)
    assert out.column("naive_ns")[0].value == 1_700_000_000_123_456
    assert out.column("paris")[0].value == 1_700_000_000_123_456


def test_feast_calls_push_columns_and_time_range_into_the_scan(repo, monitor_scans):
    store, _ = repo
    t1, t2 = DAY2, DAY3 + timedelta(hours=1)
    historical(store, [(1, t1), (2, t2)], features=["user_stats:plays_7d"])
    (scan,) = monitor_scans
    # Every feature of the view is kept (cheap, and safe for on-demand views),
    # plus join key and timestamp; the partition column and nothing else is dropped.
    assert set(scan["columns"]) == {"user_id", "event_timestamp", "plays_7d", "avg_rating", "embedding"}
    assert scan["timestamp_field"] == "event_timestamp"
    assert scan["time_range"] == (t1 - TTL, t2)

    monitor_scans.clear()
    start, end = DAY1 - timedelta(days=1), DAY2 + timedelta(hours=12)
    store.materialize(start_date=start, end_date=end)
    (scan,) = monitor_scans
    assert scan["time_range"][0] == start and scan["time_range"][1] == end
    assert "event_date" not in scan["columns"]


def test_pull_latest_from_table_or_query(repo):
    store, _ = repo
    fv = store.get_feature_view("user_stats")
    job = DeltaDuckDBOfflineStore.pull_latest_from_table_or_query(
        config=store.config,
        data_source=fv.batch_source,
        join_key_columns=["user_id"],
        feature_name_columns=["plays_7d", "embedding"],
        timestamp_field="event_timestamp",
        created_timestamp_column=None,
        start_date=DAY1 - timedelta(days=1),
        end_date=DAY2 + timedelta(hours=1),
    )
    table = job.to_arrow()
    assert table.schema.field("event_timestamp").type == TS
    latest = dict(zip(table.column("user_id").to_pylist(), table.column("plays_7d").to_pylist()))
    assert latest == {1: 20, 2: 21, 3: 12}  # DAY3 is past end_date


@pytest.fixture()
def monitor_scans(monkeypatch):
    """Record the keyword arguments every Delta scan gets (the scan still runs)."""
    from recsys_assets.feature_store import delta_offline_store as module

    calls: list[dict] = []
    real = module.read_delta_snapshot

    def spy(source, repo_path=None, **kwargs):
        calls.append(kwargs)
        return real(source, repo_path, **kwargs)

    monkeypatch.setattr(module, "read_delta_snapshot", spy)
    return calls


def test_s3_storage_options_from_env_and_endpoint_override(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://from-env:9000")
    s3 = FileSource(path="s3://bucket/t", file_format=DeltaFormat(), timestamp_field="ts")
    assert storage_options(s3, s3.path)["AWS_ENDPOINT_URL"] == "http://from-env:9000"
    override = FileSource(
        path="s3://bucket/t", file_format=DeltaFormat(), timestamp_field="ts", s3_endpoint_override="http://minio:9000"
    )
    opts = storage_options(override, override.path)
    assert opts["AWS_ACCESS_KEY_ID"] == "key" and opts["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert storage_options(override, "/local/t") == {}
