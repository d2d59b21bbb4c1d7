"""Great Expectations suites (expectations/*.json) and the asset checks built from them.

Fast: small pyarrow tables in the tables' schemas, no Spark. The Dagster tests write real
Delta tables in a temp lakehouse and run the checks in process. (No ``from __future__ import
annotations`` here: Dagster resolves the assets' resource annotations at definition time.)
"""

import datetime as dt
import json
import math
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from recsys_assets.features.transforms import ITEM_FEATURES_SCHEMA, USER_FEATURES_SCHEMA
from recsys_assets.ingestion.events import RAW_EVENTS_SCHEMA
from recsys_assets.quality import gx_suites as G
from recsys_assets.recommendations.tables import USER_RECOMMENDATIONS_SCHEMA
from recsys_assets.retrieval.embeddings import ITEM_EMBEDDINGS_SCHEMA
from recsys_assets.vocabulary import EVENT_TYPES, GENRES
from resources.lakehouse import LakehouseResource

DAY = dt.date(2024, 3, 1)
BAD_DAY = dt.date(2024, 3, 2)
N_GENRES = len(GENRES)
K = 3  # list length of the test recommendations
DIM = 8  # embedding dimension of the test embeddings


def _ts(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)


def _one_hot(i: int) -> list[float]:
    return [1.0 if g == i % N_GENRES else 0.0 for g in range(N_GENRES)]


# ----------------------------------------------------------------- good tables
def raw_events_rows(day: dt.date = DAY, n: int = 8) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{day:%Y%m%d}-{i}",
            "user_id": 100 + i,
            "item_id": 200 + i,
            "event_type": EVENT_TYPES[i % len(EVENT_TYPES)],
            "occurred_at": _ts(day, i % 24),
            "ingested_at": _ts(day, 23),
            "value": float(1 + i % 5) if EVENT_TYPES[i % len(EVENT_TYPES)] == "rating" else None,
            "device": "tv",
            "session_id": f"s{i}",
            "surface": "home",
            "position": i,
            "source_file": "landing/dt=2024-03-01/events.jsonl",
            "source_line": i,
            "event_date": day,
        }
        for i in range(n)
    ]


def user_features_rows(day: dt.date = DAY, n: int = 4) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        affinity = [0.0] * N_GENRES if i == 0 else [0.5 if g in (i, i + 1) else 0.0 for g in range(N_GENRES)]
        rows.append(
            {
                "user_id": i,
                "feature_timestamp": _ts(day, 23),
                **{c: i for c in ("events_1d", "positives_1d", "plays_7d", "completes_30d", "ratings_30d", "thumbs_down_30d")},
                **{c: 2 * i for c in ("events_7d", "events_30d", "positives_7d", "positives_30d", "plays_30d", "distinct_items_30d")},
                "watch_seconds_30d": 60.0 * i,
                "mean_rating_30d": None if i == 0 else 1.0 + i,
                "active_days_30d": 1 + i,
                "days_since_last_activity": [0, 5, 29, 12][i % 4],
                "genre_affinity": affinity,
                "favourite_genre": None if i == 0 else GENRES[i],
                "feature_date": day,
            }
        )
    return rows


def item_features_rows(day: dt.date = DAY, n: int = 4) -> list[dict[str, Any]]:
    counts = ("views_1d", "views_7d", "views_30d", "item_positives_1d", "item_positives_7d", "item_positives_30d", "impressions_7d", "clicks_7d", "item_ratings_30d")
    return [
        {
            "item_id": 200 + i,
            "feature_timestamp": _ts(day, 23),
            **{c: i for c in counts},
            "ctr_7d": None if i == 0 else 1.0,
            "item_mean_rating_30d": None if i == 0 else 5.0,
            "trend_velocity": 0.25 + i,
            "popularity_30d": math.log1p(i),
            "genre_vector": _one_hot(i),
            "primary_genre": GENRES[i],
            "title_age_days": 100 * i,
            "maturity_rating": "PG",
            "is_available": True,
            "feature_date": day,
        }
        for i in range(n)
    ]


def recommendation_rows(version: str = "v-new", users: int = 4, k: int = K, generated_day: dt.date = DAY) -> list[dict[str, Any]]:
    return [
        {
            "user_id": u,
            "rank": r,
            "item_id": 200 + (u + r) % 50,
            "score": float(k - r) + 0.5,  # strictly decreasing; ties would be fine too
            "retrieval_score": 0.5,
            "is_exploration": False,
            "source": "two_tower",
            "generated_at": _ts(generated_day),
            "model_version": version,
        }
        for u in range(users)
        for r in range(1, k + 1)
    ]


def embedding_rows(n: int = 5, dim: int = DIM, version: str = "v-new") -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        v = rng.normal(size=dim)
        rows.append({"item_id": 200 + i, "embedding": (v / np.linalg.norm(v)).astype(np.float32).tolist(), "model_version": version, "generated_at": _ts(DAY)})
    return rows


SCHEMAS = {
    "raw_events": RAW_EVENTS_SCHEMA,
    "user_features": USER_FEATURES_SCHEMA,
    "item_features": ITEM_FEATURES_SCHEMA,
    "user_recommendations": USER_RECOMMENDATIONS_SCHEMA,
    "item_embeddings": ITEM_EMBEDDINGS_SCHEMA,
}
GOOD_ROWS = {
    "raw_events": raw_events_rows,
    "user_features": user_features_rows,
    "item_features": item_features_rows,
    "user_recommendations": recommendation_rows,
    "item_embeddings": embedding_rows,
}
# Parameters the small test tables need (everything else: the suite's defaults).
PARAMS: dict[str, dict[str, Any]] = {"user_recommendations": {"k": K, "min_list_length": K}, "item_embeddings": {"dim": DIM}}


def table(suite: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[suite])


def run_suite(suite: str, rows: list[dict[str, Any]], **params: Any) -> dg.AssetCheckResult:
    result = G.validate(suite, table(suite, rows), **{**PARAMS.get(suite, {}), **params})
    return G.check_result(suite, suite, result)


def md(check: dg.AssetCheckResult | dg.AssetCheckEvaluation, key: str) -> Any:
    """A metadata entry's plain value."""
    return check.metadata[key].value


def failed(check: dg.AssetCheckResult | dg.AssetCheckEvaluation) -> set[str]:
    return set(md(check, "failed_expectations"))


def expectation(check: dg.AssetCheckResult | dg.AssetCheckEvaluation, label: str) -> dict[str, Any]:
    return next(e for e in md(check, "expectations") if e["expectation"] == label)


# ---------------------------------------------------------------- suite files
@pytest.mark.parametrize("suite", G.SUITE_NAMES)
def test_suite_json_loads_with_gx_itself(suite: str) -> None:
    import great_expectations as gx

    with open(G.expectations_dir() / f"{suite}.json") as f:
        loaded = gx.ExpectationSuite(**json.load(f))
    assert loaded.name == suite
    assert len(loaded.expectations) >= 5
    meta = loaded.meta
    assert meta["asset"] == suite and meta["view"] in G.VIEWS
    assert meta["severity"] in {"error", "warn"} and isinstance(meta["blocking"], bool)
    assert all(name in G.DERIVED for name in meta.get("view_options", {}).get("derived", []))
    assert G.load_suite(suite).to_json_dict()["expectations"] == loaded.to_json_dict()["expectations"]


def test_suites_agree_with_the_vocabulary() -> None:
    event_types = next(e for e in G.suite_dict("raw_events")["expectations"] if e["type"] == "expect_column_values_to_be_in_set")
    assert event_types["kwargs"]["value_set"] == list(EVENT_TYPES)
    for suite in ("user_features", "item_features"):
        assert G.suite_meta(suite)["parameters"]["n_genres"] == N_GENRES
    assert [G.suite_meta(s).get("partition_column") for s in G.SUITE_NAMES] == ["event_date", "feature_date", "feature_date", None, None]


# ------------------------------------------------------------------ good data
@pytest.mark.parametrize("suite", G.SUITE_NAMES)
def test_suite_passes_on_good_data(suite: str) -> None:
    check = run_suite(suite, GOOD_ROWS[suite]())
    assert failed(check) == set(), md(check, "expectations")
    assert check.passed and md(check, "success_percent") == 100.0
    assert check.check_name == f"gx_{suite}" and check.asset_key == dg.AssetKey(suite)
    assert check.severity == dg.AssetCheckSeverity.ERROR


def test_pandas_input_is_accepted() -> None:
    result = G.validate("raw_events", table("raw_events", raw_events_rows()).to_pandas())
    assert result.success


# ------------------------------------------------------------------- bad data
def _set(rows: list[dict[str, Any]], i: int, **values: Any) -> list[dict[str, Any]]:
    rows[i].update(values)
    return rows


def _dup_row(rows: list[dict[str, Any]], i: int, j: int, **keep: Any) -> list[dict[str, Any]]:
    rows[j] = {**rows[i], **keep}
    return rows


BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"

BAD_CASES = [
    # raw_events
    ("raw_events", lambda r: _set(r, 2, event_id=r[1]["event_id"]), {f"{UNIQUE}(event_id)"}),
    ("raw_events", lambda r: _set(r, 2, event_id=None), {f"{NOT_NULL}(event_id)"}),
    ("raw_events", lambda r: _set(r, 3, event_type="purchase"), {f"{IN_SET}(event_type)"}),
    ("raw_events", lambda r: _set(r, 3, occurred_at=_ts(DAY - dt.timedelta(days=1), 23)), {"expect_column_pair_values_to_be_equal(occurred_date, event_date)"}),
    ("raw_events", lambda r: _set(r, 4, user_id=None), {f"{NOT_NULL}(user_id)"}),
    ("raw_events", lambda r: _set(r, 4, item_id=None), {f"{NOT_NULL}(item_id)"}),
    ("raw_events", lambda r: _set(r, 2, value=6.0), {f"{BETWEEN}(rating_value)"}),  # row 2 is a rating
    ("raw_events", lambda r: _set(r, 0, value=-3.0), set()),  # a play's value is no rating
    # user_features
    ("user_features", lambda r: _set(r, 1, events_7d=-1), {f"{BETWEEN}(events_7d)"}),
    ("user_features", lambda r: _set(r, 1, mean_rating_30d=0.5), {f"{BETWEEN}(mean_rating_30d)"}),
    ("user_features", lambda r: _set(r, 2, days_since_last_activity=30), {f"{BETWEEN}(days_since_last_activity)"}),
    ("user_features", lambda r: _set(r, 2, genre_affinity=[0.3] + [0.0] * (N_GENRES - 1)), {f"{IN_SET}(genre_affinity_sum)"}),
    ("user_features", lambda r: _set(r, 2, genre_affinity=[1.0005] + [0.0] * (N_GENRES - 1)), set()),  # within tolerance
    ("user_features", lambda r: _set(r, 2, genre_affinity=[1.0] * 3), {f"{IN_SET}(genre_affinity_sum)", f"{BETWEEN}(genre_affinity_length)"}),
    ("user_features", lambda r: _set(r, 3, user_id=None), {f"{NOT_NULL}(user_id)"}),
    ("user_features", lambda r: _dup_row(r, 1, 2), {"expect_compound_columns_to_be_unique(user_id, feature_date)"}),
    # item_features
    ("item_features", lambda r: _set(r, 1, clicks_7d=-2), {f"{BETWEEN}(clicks_7d)"}),
    ("item_features", lambda r: _set(r, 1, ctr_7d=1.5), {f"{BETWEEN}(ctr_7d)"}),
    ("item_features", lambda r: _set(r, 1, trend_velocity=0.0), {f"{BETWEEN}(trend_velocity)"}),
    ("item_features", lambda r: _set(r, 1, item_mean_rating_30d=5.5), {f"{BETWEEN}(item_mean_rating_30d)"}),
    ("item_features", lambda r: _set(r, 2, genre_vector=[0.5] + [0.0] * (N_GENRES - 1)), {f"{IN_SET}(genre_vector_non_binary)"}),
    ("item_features", lambda r: _set(r, 2, item_id=None), {f"{NOT_NULL}(item_id)"}),
    ("item_features", lambda r: _dup_row(r, 1, 3), {"expect_compound_columns_to_be_unique(item_id, feature_date)"}),
    # user_recommendations (rows are user-major: user u, rank r at index u*K + r-1)
    ("user_recommendations", lambda r: r[:-1], {f"{BETWEEN}(list_length)"}),  # last user has K-1 items
    ("user_recommendations", lambda r: _set(r, 1, item_id=r[0]["item_id"]), {f"{IN_SET}(duplicate_items)"}),
    ("user_recommendations", lambda r: _set(r, 1, rank=1), {f"{IN_SET}(duplicate_ranks)", f"{IN_SET}(ranks_contiguous)"}),
    ("user_recommendations", lambda r: _set(r, 2, rank=K + 1), {f"{IN_SET}(ranks_contiguous)"}),
    ("user_recommendations", lambda r: _set(r, 2, score=99.0), {f"{IN_SET}(scores_sorted)"}),
    ("user_recommendations", lambda r: [_set(r, i, model_version="") for i in range(K)][0], {"expect_column_value_lengths_to_be_between(model_version)"}),
    ("user_recommendations", lambda r: [_set(r, i, model_version=None) for i in range(K)][0], {f"{NOT_NULL}(model_version)"}),
    ("user_recommendations", lambda r: [], {"expect_table_row_count_to_be_between"}),
    # item_embeddings
    ("item_embeddings", lambda r: _set(r, 1, embedding=r[1]["embedding"][:-1]), {f"{BETWEEN}(dim)", f"{BETWEEN}(norm)"}),
    ("item_embeddings", lambda r: _set(r, 1, embedding=[1.0] + [0.0] * (DIM - 2) + [float("nan")]), {f"{IN_SET}(all_finite)"}),
    ("item_embeddings", lambda r: _set(r, 1, embedding=[2.0 * x for x in r[1]["embedding"]]), {f"{BETWEEN}(norm)"}),
    ("item_embeddings", lambda r: _set(r, 1, item_id=r[0]["item_id"]), {f"{UNIQUE}(item_id)"}),
    ("item_embeddings", lambda r: _set(r, 1, item_id=None), {f"{NOT_NULL}(item_id)"}),
    ("item_embeddings", lambda r: _set(r, 1, model_version=None), {f"{NOT_NULL}(model_version)"}),
    ("item_embeddings", lambda r: _set(r, 1, model_version="v-old"), {"expect_column_unique_value_count_to_be_between(model_version)"}),
]


@pytest.mark.parametrize(("suite", "corrupt", "expected"), BAD_CASES, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(BAD_CASES)])
def test_bad_data_fails_the_right_expectation(suite: str, corrupt, expected: set[str]) -> None:
    check = run_suite(suite, corrupt(GOOD_ROWS[suite]()))
    assert failed(check) == expected
    assert check.passed is (not expected)
    for label in expected:
        e = expectation(check, label)
        assert e["success"] is False and e["type"] == label.split("(")[0]


def test_failure_metadata_names_rows_and_values() -> None:
    rows = raw_events_rows()
    rows[2]["value"] = 9.0
    check = run_suite("raw_events", rows)
    e = expectation(check, f"{BETWEEN}(rating_value)")
    assert e["column"] == "rating_value" and e["unexpected_count"] == 1
    assert e["unexpected_values_sample"] == [9.0]
    assert e["unexpected_rows_sample"] == [{"event_id": rows[2]["event_id"], "rating_value": 9.0}]
    assert e["kwargs"] == {"min_value": 1.0, "max_value": 5.0}
    assert 0 < md(check, "success_percent") < 100
    assert "❌" in md(check, "summary")
    json.dumps({k: md(check, k) for k in check.metadata}, allow_nan=False)  # plain JSON

    recs = recommendation_rows()
    recs[2]["score"] = 99.0
    e = expectation(run_suite("user_recommendations", recs), f"{IN_SET}(scores_sorted)")
    assert e["unexpected_rows_sample"] == [{"model_version": "v-new", "user_id": 0, "scores_sorted": False}]


def test_missing_column_fails_with_the_gx_exception() -> None:
    check = G.check_result("item_features", "item_features", G.validate("item_features", table("item_features", item_features_rows()).drop_columns(["ctr_7d"])))
    assert failed(check) == {f"{BETWEEN}(ctr_7d)"}
    assert "ctr_7d" in expectation(check, f"{BETWEEN}(ctr_7d)")["exception"]


def test_severity_comes_from_the_suite_meta(monkeypatch) -> None:
    meta = {**G.suite_meta("user_features"), "severity": "warn", "blocking": False}
    monkeypatch.setattr(G, "suite_meta", lambda name: meta)
    check = run_suite("user_features", _set(user_features_rows(), 1, events_7d=-1))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    (spec,) = G.gx_asset_check("user_features", partitions_def=DAILY).check_specs
    assert not spec.blocking and spec.partitions_def == DAILY


def test_recommendation_list_length_parameters() -> None:
    short = [r for r in recommendation_rows() if not (r["user_id"] == 1 and r["rank"] == K)]
    assert not run_suite("user_recommendations", short).passed  # every list must have K items here
    assert run_suite("user_recommendations", short, min_list_length=1).passed  # explicitly allowed
    assert G.suite_parameters("user_recommendations") == {"k": 50, "min_list_length": 10}  # a home-page row at least
    assert not run_suite("user_recommendations", recommendation_rows(k=K + 1)).passed  # longer than k
    check = G.check_result("user_recommendations", "user_recommendations", G.validate("user_recommendations", table("user_recommendations", recommendation_rows(k=50))))
    assert check.passed  # the suite's default K is 50
    with pytest.raises(ValueError, match="no parameters"):
        G.validate("user_recommendations", table("user_recommendations", recommendation_rows()), kk=3)


def test_embedding_dimension_comes_from_meta_or_parameters() -> None:
    assert G.suite_parameters("item_embeddings") == {"dim": 64}
    assert run_suite("item_embeddings", embedding_rows(dim=64), dim=None).passed  # suite meta default
    assert failed(run_suite("item_embeddings", embedding_rows(dim=DIM), dim=16)) == {f"{BETWEEN}(dim)"}


def test_views_are_pure_and_derive_the_columns() -> None:
    recs = table("user_recommendations", recommendation_rows(users=2))
    lists = G.per_user_lists_view(recs)
    assert lists.columns.tolist()[:3] == ["model_version", "user_id", "list_length"]
    assert lists["list_length"].tolist() == [K, K] and lists["scores_sorted"].all() and lists["ranks_contiguous"].all()
    emb = G.embedding_stats_view(table("item_embeddings", embedding_rows(n=2)))
    assert "embedding" not in emb.columns and emb["dim"].tolist() == [DIM, DIM]
    assert np.allclose(emb["norm"], 1.0, atol=1e-6) and emb["all_finite"].all()
    assert recs.num_rows == 2 * K  # input untouched


# ------------------------------------------------------------------ Dagster
DAILY = dg.DailyPartitionsDefinition(start_date="2024-03-01", timezone="UTC")
READS: list[tuple[Any, ...]] = []


class SpyLakehouse(LakehouseResource):
    """The lakehouse, recording what the checks read."""

    def read(self, name: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
        READS.append(("read", name, filters))
        return super().read(name, columns=columns, filters=filters)

    def read_range(self, name: str, start: dt.date, end: dt.date, column: str = "event_date", columns: list[str] | None = None) -> pa.Table:
        READS.append(("read_range", name, start, end, column))
        return super().read_range(name, start, end, column=column, columns=columns)


@dg.asset(name="raw_events", partitions_def=DAILY)
def tiny_raw_events(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """Writes good events on DAY and events with a bad event type on BAD_DAY (any day range)."""
    window = context.partition_time_window
    start, end = window.start.date(), (window.end - dt.timedelta(days=1)).date()
    rows = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        day_rows = raw_events_rows(day)
        if day == BAD_DAY:
            day_rows[3]["event_type"] = "purchase"
        rows += day_rows
    version = lakehouse.overwrite_range("raw_events", table("raw_events", rows), start, end, column="event_date")
    return dg.MaterializeResult(metadata={"delta_version": version})


def _day_reads(start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    """What reading exactly the days [start, end] of raw_events records (read_range delegates to read)."""
    return [("read_range", "raw_events", start, end, "event_date"), ("read", "raw_events", [("event_date", ">=", start), ("event_date", "<=", end)])]


def _check_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_partitioned_check_reads_only_the_run_partition(tmp_path) -> None:
    lakehouse = SpyLakehouse(root_uri=str(tmp_path / "lakehouse"))
    check = G.gx_asset_check("raw_events", partitions_def=DAILY)
    (spec,) = check.check_specs
    assert spec.partitions_def == DAILY and spec.blocking and "GX suite" in (spec.description or "")
    resources = {"lakehouse": lakehouse}
    for day in (DAY, BAD_DAY):  # both partitions are in the table before any check runs
        assert dg.materialize([tiny_raw_events], partition_key=day.isoformat(), resources=resources).success
    assert lakehouse.read("raw_events").num_rows == 2 * len(raw_events_rows())
    only_check = dg.AssetSelection.checks(check)

    def check_only(day: dt.date) -> dg.ExecuteInProcessResult:
        # materialize(partition_key=...) refuses a checks-only selection in dagster 1.13 ("no
        # PartitionsDefinition shared by all the provided assets"); the run tag it would set works.
        tags = {"dagster/partition": day.isoformat()}
        return dg.materialize([tiny_raw_events, check], selection=only_check, tags=tags, resources=resources, raise_on_error=False)

    READS.clear()
    good = check_only(DAY)
    evaluation = _check_evaluation(good)
    assert good.success and evaluation.passed and evaluation.check_name == "gx_raw_events"
    assert READS == _day_reads(DAY, DAY)
    assert md(evaluation, "partition_range") == f"{DAY}..{DAY}"
    assert md(evaluation, "rows_read") == len(raw_events_rows()) == md(evaluation, "rows_validated")

    READS.clear()
    bad = check_only(BAD_DAY)
    evaluation = _check_evaluation(bad)
    assert not bad.success  # blocking + ERROR severity fails the step
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert READS == _day_reads(BAD_DAY, BAD_DAY)
    assert md(evaluation, "failed_expectations") == [f"{IN_SET}(event_type)"]
    e = expectation(evaluation, f"{IN_SET}(event_type)")
    assert e["unexpected_values_sample"] == ["purchase"] and e["column"] == "event_type"
    assert e["unexpected_rows_sample"] == [{"event_id": f"{BAD_DAY:%Y%m%d}-3", "event_type": "purchase"}]

    # Materializing the good day with its check in one run: the check runs after the asset.
    run = dg.materialize([tiny_raw_events, check], partition_key=DAY.isoformat(), resources=resources)
    assert _check_evaluation(run).passed


def test_partitioned_check_reads_the_run_range(tmp_path) -> None:
    lakehouse = SpyLakehouse(root_uri=str(tmp_path / "lakehouse"))
    check = G.gx_asset_check("raw_events", partitions_def=DAILY)
    tags = {"dagster/asset_partition_range_start": DAY.isoformat(), "dagster/asset_partition_range_end": BAD_DAY.isoformat()}
    READS.clear()
    run = dg.materialize([tiny_raw_events, check], tags=tags, resources={"lakehouse": lakehouse}, raise_on_error=False)
    evaluation = _check_evaluation(run)
    assert READS == _day_reads(DAY, BAD_DAY)
    assert md(evaluation, "partition_range") == f"{DAY}..{BAD_DAY}" and md(evaluation, "rows_read") == 2 * len(raw_events_rows())
    assert not evaluation.passed and failed(evaluation) == {f"{IN_SET}(event_type)"}


@dg.asset(name="user_recommendations")
def tiny_recommendations(lakehouse: LakehouseResource) -> None:
    """An older good version and a newer one with a short list."""
    good = recommendation_rows("v-old", generated_day=DAY)
    newer = recommendation_rows("v-new", generated_day=BAD_DAY)[:-1]
    lakehouse.overwrite("user_recommendations", table("user_recommendations", good + newer))


def test_recommendation_check_validates_one_model_version(tmp_path) -> None:
    lakehouse = SpyLakehouse(root_uri=str(tmp_path / "lakehouse"))
    check = G.gx_asset_check("user_recommendations")
    (spec,) = check.check_specs
    assert spec.partitions_def is None
    resources = {"lakehouse": lakehouse}
    run_config = {"ops": {check.node_def.name: {"config": {"parameters": {"k": K, "min_list_length": K}}}}}
    newest = dg.materialize([tiny_recommendations, check], resources=resources, run_config=run_config, raise_on_error=False)
    evaluation = _check_evaluation(newest)
    assert md(evaluation, "model_version") == "v-new"
    assert not evaluation.passed
    assert md(evaluation, "failed_expectations") == [f"{BETWEEN}(list_length)"]

    run_config["ops"][check.node_def.name]["config"]["model_version"] = "v-old"
    older = dg.materialize([tiny_recommendations, check], resources=resources, run_config=run_config, raise_on_error=False)
    evaluation = _check_evaluation(older)
    assert evaluation.passed and md(evaluation, "model_version") == "v-old"
    assert md(evaluation, "rows_read") == 4 * K


def test_all_gx_checks() -> None:
    checks = G.all_gx_checks(DAILY)
    specs = {s.asset_key.to_user_string(): s for c in checks for s in c.check_specs}
    assert set(specs) == set(G.SUITE_NAMES)
    assert {k for k, s in specs.items() if s.partitions_def == DAILY} == {"raw_events", "user_features", "item_features"}
    assert all(s.description for s in specs.values())


@dg.asset(name="item_embeddings")
def tiny_embeddings(lakehouse: LakehouseResource) -> None:
    """DIM-dimensional embeddings of one model version, registered with its embedding_dim."""
    lakehouse.overwrite("item_embeddings", table("item_embeddings", embedding_rows(dim=DIM)))
    registry = pa.table({"model_version": ["v-new"], "config": [json.dumps({"embedding_dim": DIM})]})
    lakehouse.overwrite("model_versions", registry)


def test_embedding_check_takes_the_dimension_from_the_model_registry(tmp_path) -> None:
    lakehouse = LakehouseResource(root_uri=str(tmp_path / "lakehouse"))
    check = G.gx_asset_check("item_embeddings")
    run = dg.materialize([tiny_embeddings, check], resources={"lakehouse": lakehouse}, raise_on_error=False)
    evaluation = _check_evaluation(run)
    assert evaluation.passed, md(evaluation, "failed_expectations")
    assert md(evaluation, "parameters") == {"dim": DIM}  # the registry's, not the suite default 64
    run_config = {"ops": {check.node_def.name: {"config": {"parameters": {"dim": 64}}}}}
    run = dg.materialize([tiny_embeddings, check], resources={"lakehouse": lakehouse}, run_config=run_config, raise_on_error=False)
    assert failed(_check_evaluation(run)) == {f"{BETWEEN}(dim)"}


def test_check_on_a_missing_table_fails(tmp_path) -> None:
    lakehouse = LakehouseResource(root_uri=str(tmp_path / "lakehouse"))
    check = G.gx_asset_check("item_embeddings")
    run = dg.materialize(
        [dg.AssetSpec("item_embeddings"), check], selection=dg.AssetSelection.checks(check), resources={"lakehouse": lakehouse}, raise_on_error=False
    )
    evaluation = _check_evaluation(run)
    assert not evaluation.passed and "item_embeddings" in md(evaluation, "table_uri")
