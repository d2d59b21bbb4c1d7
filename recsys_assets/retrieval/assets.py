"""Retrieval assets: embedding tables (also served by Feast) and the faiss index."""

import contextlib
import datetime as dt
import io
import time

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from recsys_assets.feature_store.assets import ensure_live
from recsys_assets.retrieval.ann_index import (
    AnnIndex,
    IndexSpec,
    build_index,
    choose_index_spec,
    exact_top_k,
    ivf_params_for,
    recall_at_k,
    tune_search_params,
)
from recsys_assets.retrieval.embeddings import ITEM_EMBEDDINGS_SCHEMA, USER_EMBEDDINGS_SCHEMA, embedding_matrix
from recsys_assets.training.artifacts import ModelArtifact, latest_version, load_model
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource, table_metadata

GROUP = "retrieval"
OWNERS = ["team:ml-platform"]
RECALL_TARGET = 0.95


def current_model(lakehouse: LakehouseResource) -> ModelArtifact:
    version = latest_version(lakehouse)
    if version is None:
        raise dg.Failure("no trained model yet: materialize two_tower_model first")
    return load_model(lakehouse, version)


def embedding_table(ids: np.ndarray, vectors: np.ndarray, version: str, at: dt.datetime, schema: pa.Schema, **extra) -> pa.Table:
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    lists = pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32()))
    columns = {schema.names[0]: pa.array(ids, pa.int64()), "embedding": lists, **extra}
    columns["model_version"] = pa.array([version] * len(ids), pa.string())
    columns["generated_at"] = pa.array([at] * len(ids), pa.timestamp("us", tz="UTC"))
    return pa.table({name: columns[name] for name in schema.names}, schema=schema)


def materialize_view(feast: FeastResource, view: str, start: dt.datetime, end: dt.datetime) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # Feast prints a progress banner
        feast.store().materialize(start_date=start, end_date=end, feature_views=[view])


def _write_embeddings(context, lakehouse, feast, name: str, table: pa.Table, at: dt.datetime) -> dg.MaterializeResult:
    ensure_live(lakehouse, name)
    version = lakehouse.overwrite(name, table, commit_metadata={"dagster_run_id": context.run.run_id})
    materialize_view(feast, name, at - dt.timedelta(seconds=1), at + dt.timedelta(seconds=1))
    norms = np.linalg.norm(embedding_matrix(table), axis=1)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, name, version),
            "dagster/row_count": table.num_rows,
            "model_version": table.column("model_version")[0].as_py(),
            "dimension": int(len(table.column("embedding")[0])),
            "norm_min": round(float(norms.min()), 5),
            "norm_max": round(float(norms.max()), 5),
            "online": "materialized to the Feast online store",
        }
    )


# Item vectors in the model's space: the index is built from them and serving can read
# them from Feast (e.g. to score a title against a session).
@dg.asset(group_name=GROUP, kinds={"pytorch", "delta", "feast"}, owners=OWNERS, deps=["two_tower_model", "feast_registry"])
def item_embeddings(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, feast: FeastResource) -> dg.MaterializeResult:
    """Unit-norm item embeddings of the current model version (every catalog item; items without
    training interactions are encoded from their features).

    Grain: one row per `item_id` with `embedding` (list of float32), `model_version` and
    `generated_at`. Not partitioned: replaced per model version (older versions stay in the
    Delta history). Served online by the Feast view `item_embeddings`.
    """
    model = current_model(lakehouse)
    at = dt.datetime.now(dt.timezone.utc)
    table = embedding_table(model.item_ids, model.model.item_embeddings(), model.version, at, ITEM_EMBEDDINGS_SCHEMA)
    return _write_embeddings(context, lakehouse, feast, "item_embeddings", table, at)


# User vectors: the queries of retrieval, also served online for real-time scoring.
@dg.asset(group_name=GROUP, kinds={"pytorch", "delta", "feast"}, owners=OWNERS, deps=["two_tower_model", "feast_registry"])
def user_embeddings(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, feast: FeastResource) -> dg.MaterializeResult:
    """Unit-norm user embeddings of the current model version, for every user profile (users
    without training interactions are encoded from their features: `is_cold_start`).

    Grain: one row per `user_id`. Not partitioned: replaced per model version. Served online
    by the Feast view `user_embeddings`.
    """
    model = current_model(lakehouse)
    at = dt.datetime.now(dt.timezone.utc)
    cold = pa.array(~model.model.warm_users, pa.bool_())
    table = embedding_table(model.user_ids, model.model.user_embeddings(), model.version, at, USER_EMBEDDINGS_SCHEMA, is_cold_start=cold)
    return _write_embeddings(context, lakehouse, feast, "user_embeddings", table, at)


def index_artifact_path(version: str) -> str:
    return f"indexes/{version}/index.faiss"


def load_index(lakehouse: LakehouseResource, version: str) -> AnnIndex:
    return AnnIndex.from_bytes(lakehouse.read_artifact(index_artifact_path(version)))


def sample_queries(lakehouse: LakehouseResource, n: int, seed: int) -> np.ndarray:
    users = embedding_matrix(lakehouse.read("user_embeddings", columns=["embedding"]))
    rng = np.random.default_rng(seed)
    return users[rng.choice(len(users), size=min(n, len(users)), replace=False)]


def index_recall(index: AnnIndex, item_vectors: np.ndarray, item_ids: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """recall@k of the index against exact inner-product search for ``queries``."""
    _, exact = exact_top_k(queries, item_vectors, item_ids, k)
    return recall_at_k(index, queries, exact, k)


class AnnIndexConfig(dg.Config):
    kind: str | None = Field(default=None, description="flat, ivf_flat or hnsw; default chosen by catalog size")
    tuning_queries: int = Field(default=1000, description="User embeddings used to tune nprobe/efSearch")
    target_recall: float = Field(default=0.97, description="recall@10 the search parameters are tuned to")


# Scoring every title for every user does not scale; the index finds each user's few
# hundred best candidates in milliseconds.
@dg.asset(
    group_name=GROUP,
    kinds={"faiss"},
    owners=OWNERS,
    deps=["item_embeddings", "user_embeddings"],
    check_specs=[
        dg.AssetCheckSpec(
            "recall_at_10_vs_exact",
            asset="ann_index",
            blocking=True,
            description=f"recall@10 of the index against exact search on a sample of users is at least {RECALL_TARGET}",
        )
    ],
)
def ann_index(context: dg.AssetExecutionContext, config: AnnIndexConfig, lakehouse: LakehouseResource):
    """A faiss inner-product index over the current model's item embeddings, with its id map.
    Exact `IndexFlatIP` for catalogs up to ~50k items, IVF above (parameters recorded and
    tuned to the target recall on real user embeddings).

    Not partitioned: one artifact per model version at `artifacts/indexes/<version>/index.faiss`.
    The blocking check measures recall@10 against exact search on a separate user sample.
    """
    items = lakehouse.read("item_embeddings")
    version = items.column("model_version")[0].as_py()
    vectors, ids = embedding_matrix(items), items.column("item_id").to_numpy()
    spec = index_spec(config.kind, len(ids), vectors.shape[1])
    started = time.monotonic()
    index = build_index(vectors, ids, spec)
    if index.spec.kind != "flat":
        queries = sample_queries(lakehouse, config.tuning_queries, seed=1)
        _, exact = exact_top_k(queries, vectors, ids, 10)
        tune_search_params(index, queries, exact, k=10, target_recall=config.target_recall)
    build_seconds = time.monotonic() - started
    uri = lakehouse.write_artifact(index_artifact_path(version), index.to_bytes())
    yield dg.MaterializeResult(
        metadata={
            "model_version": version,
            "artifact_uri": dg.MetadataValue.path(uri),
            "index": dg.MetadataValue.json(index.metadata()),
            "kind": index.spec.kind,
            "items": int(len(ids)),
            "build_seconds": round(build_seconds, 3),
        }
    )
    yield recall_check_result(index, vectors, ids, sample_queries(lakehouse, 1000, seed=7))


def index_spec(kind: str | None, n_items: int, dim: int) -> IndexSpec:
    """The configured index kind, or the default for the catalog size."""
    if kind is None:
        return choose_index_spec(n_items, dim)
    if kind == "flat":
        return IndexSpec.flat()
    if kind == "hnsw":
        return IndexSpec.hnsw()
    if kind == "ivf_flat":
        return IndexSpec("ivf_flat", ivf_params_for(n_items))
    raise dg.Failure(f"unknown index kind {kind!r} (flat, ivf_flat or hnsw)")


def recall_check_result(index: AnnIndex, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, threshold: float = RECALL_TARGET) -> dg.AssetCheckResult:
    recall = index_recall(index, vectors, ids, queries)
    return dg.AssetCheckResult(
        asset_key="ann_index",
        check_name="recall_at_10_vs_exact",
        passed=recall >= threshold,
        metadata={"recall_at_10": round(recall, 4), "threshold": threshold, "queries": int(len(queries)), "index": dg.MetadataValue.json(index.metadata())},
    )
