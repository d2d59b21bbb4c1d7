"""Training assets: point-in-time training examples from Feast, and the two-tower model."""

import datetime as dt
import json
import time

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from recsys_assets.training.artifacts import register_version, save_model
from recsys_assets.training.examples import (
    ITEM_FEATURE_REFS,
    TRAIN,
    USER_FEATURE_REFS,
    VALIDATION,
    PositiveRules,
    end_of_day,
    fit_split,
    index_pairs,
    item_tower_features,
    positive_interactions,
    split_bounds,
    time_split,
    user_tower_features,
)
from recsys_assets.training.two_tower import TwoTowerConfig, train_two_tower
from recsys_assets.vocabulary import POSITIVE_EVENT_TYPES
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource, table_metadata

OWNERS = ["team:ml-platform"]

TRAINING_EXAMPLES_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("event_date", pa.date32()),
        ("split", pa.string()),
        ("events_30d", pa.float64()),
        ("positives_30d", pa.float64()),
        ("active_days_30d", pa.float64()),
        ("days_since_last_activity", pa.float64()),
        ("mean_rating_30d", pa.float64()),
        ("genre_affinity", pa.list_(pa.float32())),
        ("popularity_30d", pa.float64()),
        ("trend_velocity", pa.float64()),
        ("item_mean_rating_30d", pa.float64()),
        ("title_age_days", pa.float64()),
        ("genre_vector", pa.list_(pa.float32())),
        ("maturity_rating", pa.string()),
    ]
)


def last_day_with_events(lakehouse: LakehouseResource) -> dt.date:
    audit = lakehouse.read("ingestion_audit", columns=["event_date", "valid_events"])
    days = [d for d, n in zip(audit.column("event_date").to_pylist(), audit.column("valid_events").to_pylist()) if n]
    if not days:
        raise dg.Failure("no ingested events yet: materialize raw_events first")
    return max(days)


class TrainingExamplesConfig(dg.Config):
    window_days: int = Field(default=60, description="Days of interactions to train on (ending at end_day)")
    validation_days: int = Field(default=3, description="Last days before the test days: early stopping")
    test_days: int = Field(default=3, description="Last days of the window: held out for recommendation_eval")
    end_day: str | None = Field(default=None, description="YYYY-MM-DD; default the last day with ingested events")
    positive_event_types: list[str] = Field(default=list(POSITIVE_EVENT_TYPES), description="Event types that are positives")
    min_rating: float = Field(default=4.0, description="Ratings at or above this are positives too")


# Training data with features exactly as they were when each interaction happened:
# the Feast offline store's point-in-time join keeps the future out of the past.
@dg.asset(
    group_name="training",
    kinds={"feast", "delta"},
    owners=OWNERS,
    deps=["raw_events", "feast_registry", "user_features", "item_features"],
)
def training_examples(
    context: dg.AssetExecutionContext, config: TrainingExamplesConfig, lakehouse: LakehouseResource, feast: FeastResource
) -> dg.MaterializeResult:
    """Positive interactions (play, complete, thumbs up, click; ratings >= 4) of the training
    window with the `two_tower_training` feature service joined point-in-time from Feast.

    Grain: one row per distinct (user, item, day) positive, first timestamp of the day.
    `split`: `train`, `validation` (the 3 days before the test days: early stopping) and
    `test` (the last 3 days: held out for `recommendation_eval`). Not partitioned: each
    materialization replaces the table; its Delta version is the training data version.
    """
    end = dt.date.fromisoformat(config.end_day) if config.end_day else last_day_with_events(lakehouse)
    start = end - dt.timedelta(days=config.window_days - 1)
    events = lakehouse.read_range(
        "raw_events", start, end, columns=["user_id", "item_id", "event_type", "value", "occurred_at", "event_date"]
    )
    rules = PositiveRules(tuple(config.positive_event_types), config.min_rating)
    positives = positive_interactions(events, rules)
    if positives.empty:
        raise dg.Failure(f"no positive interactions between {start} and {end}")
    history_days = (end - min(positives["event_date"])).days + 1
    validation_days, test_days = fit_split(history_days, config.validation_days, config.test_days)
    if (validation_days, test_days) != (config.validation_days, config.test_days):
        context.log.warning(f"only {history_days} days of history: {validation_days} validation and {test_days} test days")
    positives["split"] = time_split(positives, end, validation_days, test_days)
    store = feast.store()
    started = time.monotonic()
    frame = store.get_historical_features(entity_df=positives, features=store.get_feature_service("two_tower_training")).to_df()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame = frame.sort_values(["event_timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame[TRAINING_EXAMPLES_SCHEMA.names], schema=TRAINING_EXAMPLES_SCHEMA, preserve_index=False)
    version = lakehouse.overwrite("training_examples", table, commit_metadata={"dagster_run_id": context.run.run_id})
    counts = frame["split"].value_counts().to_dict()
    coverage = {c: round(float(frame[c].notna().mean()), 3) for c in ("events_30d", "genre_affinity", "popularity_30d", "genre_vector")}
    bounds = split_bounds(end, validation_days, test_days)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(lakehouse, "training_examples", version),
            "dagster/row_count": len(frame),
            "window": f"{start}..{end}",
            "split_bounds": dg.MetadataValue.json({k: v.isoformat() for k, v in bounds.items()}),
            "rows_by_split": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["item_id"].nunique()),
            "feature_coverage": dg.MetadataValue.json(coverage),
            "raw_events_version": lakehouse.version("raw_events"),
            "feast_seconds": round(time.monotonic() - started, 2),
        }
    )


class TwoTowerTrainingConfig(dg.Config):
    embedding_dim: int = 64
    temperature: float = Field(default=0.25, description="Softmax temperature (the setting that matters most; 0.2-0.3)")
    lr: float = 1e-2
    batch_size: int = 1024
    max_epochs: int = 30
    patience: int = Field(default=5, description="Epochs without better validation recall@10 before stopping")
    extra_uniform_negatives: int = 0
    use_features: bool = Field(default=True, description="Feed user/item features to the towers (cold start)")
    seed: int = 42
    num_threads: int = Field(default=1, description="torch threads (1 is fastest on small shared machines)")

    def two_tower_config(self) -> TwoTowerConfig:
        return TwoTowerConfig(
            embedding_dim=self.embedding_dim,
            temperature=self.temperature,
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            extra_uniform_negatives=self.extra_uniform_negatives,
            seed=self.seed,
            num_threads=self.num_threads,
        )


def entity_features_at(feast: FeastResource, lakehouse: LakehouseResource, at: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every user and catalog item with their dimension columns and Feast features as of ``at``."""
    store = feast.store()
    users = lakehouse.read("users", columns=["user_id", "region", "age_band", "is_kids"]).to_pandas().sort_values("user_id")
    items = lakehouse.read("items", columns=["item_id", "genres", "maturity_rating", "primary_genre"]).to_pandas().sort_values("item_id")
    u = store.get_historical_features(entity_df=users.assign(event_timestamp=at), features=USER_FEATURE_REFS).to_df()
    i = store.get_historical_features(entity_df=items.assign(event_timestamp=at), features=ITEM_FEATURE_REFS).to_df()
    return u.sort_values("user_id").reset_index(drop=True), i.sort_values("item_id").reset_index(drop=True)


def _history_markdown(history: list[dict]) -> str:
    lines = ["| epoch | loss | val recall@10 | val ndcg@10 | seconds |", "|---:|---:|---:|---:|---:|"]
    for h in history:
        lines.append(
            f"| {int(h['epoch'])} | {h['loss']:.4f} | {h.get('val_recall@10', float('nan')):.4f} | "
            f"{h.get('val_ndcg@10', float('nan')):.4f} | {h['seconds']:.2f} |"
        )
    return "\n".join(lines)


# The retrieval model: one embedding space for users and titles, trained on what people
# chose, with features so new users and titles get sensible embeddings too.
@dg.asset(group_name="training", kinds={"pytorch"}, owners=OWNERS, deps=["training_examples", "users", "items"])
def two_tower_model(
    context: dg.AssetExecutionContext, config: TwoTowerTrainingConfig, lakehouse: LakehouseResource, feast: FeastResource
) -> dg.MaterializeResult:
    """A two-tower retrieval model (PyTorch, CPU): user tower = id embedding + user features
    (genre affinity, activity, recency, mean rating, region, age band, kids flag); item tower
    = id embedding + item features (genres, popularity, trend, rating, age of title, maturity,
    primary genre); L2-normalised outputs, dot-product scores. In-batch sampled softmax with
    logQ correction and a temperature; early stopping on validation recall@10.

    One artifact per version under `artifacts/models/<version>/` (weights, config, feature
    schema, training data version, metrics); the version is a content hash. Not partitioned.
    """
    examples = lakehouse.read("training_examples", columns=["user_id", "item_id", "event_date", "split"]).to_pandas()
    train = examples[examples["split"] == TRAIN]
    valid = examples[examples["split"] == VALIDATION]
    if train.empty:
        raise dg.Failure("training_examples has no train rows")
    train_end = pd.to_datetime(train["event_date"]).max().date()
    users_f, items_f = entity_features_at(feast, lakehouse, end_of_day(train_end))
    user_ids = users_f["user_id"].to_numpy(dtype=np.int64)
    item_ids = items_f["item_id"].to_numpy(dtype=np.int64)
    train_pairs = index_pairs(train, user_ids, item_ids)
    valid_pairs = index_pairs(valid, user_ids, item_ids) if len(valid) else None

    model_config = config.two_tower_config()
    user_features = user_tower_features(users_f) if config.use_features else None
    item_features = item_tower_features(items_f) if config.use_features else None

    def on_epoch_end(epoch: int, loss: float, metrics: dict | None) -> None:
        shown = "" if not metrics else f", val recall@10 {metrics['recall@10']:.4f}, ndcg@10 {metrics['ndcg@10']:.4f}"
        context.log.info(f"epoch {epoch}: loss {loss:.4f}{shown}")

    started = time.monotonic()
    trained = train_two_tower(
        train_pairs, len(user_ids), len(item_ids), model_config, user_features, item_features, valid=valid_pairs, callback=on_epoch_end
    )
    seconds = time.monotonic() - started
    best = next((h for h in trained.history if h["epoch"] == trained.best_epoch), trained.history[-1])
    validation_metrics = {k[len("val_") :]: v for k, v in best.items() if k.startswith("val_")}
    manifest = {
        "config": config.model_dump(),
        "feature_schema": {"user": trained.user_schema, "item": trained.item_schema},
        "training_data": {
            "training_examples_version": lakehouse.version("training_examples"),
            "train_end": train_end.isoformat(),
            "train_pairs": int(len(train)),
            "validation_pairs": int(len(valid)),
        },
        "validation_metrics": validation_metrics,
        "history": trained.history,
        "best_epoch": trained.best_epoch,
        "training_seconds": round(seconds, 2),
    }
    artifact = save_model(lakehouse, trained, user_ids, item_ids, manifest)
    register_version(lakehouse, artifact, dt.datetime.now(dt.timezone.utc))
    epoch_seconds = [h["seconds"] for h in trained.history]
    return dg.MaterializeResult(
        metadata={
            "model_version": artifact.version,
            "artifact_uri": dg.MetadataValue.path(lakehouse.artifact_uri("models", artifact.version)),
            "training_data_version": manifest["training_data"]["training_examples_version"],
            "train_pairs": int(len(train)),
            "validation_pairs": int(len(valid)),
            "users": len(user_ids),
            "items": len(item_ids),
            "epochs": len(trained.history),
            "best_epoch": trained.best_epoch,
            "validation_metrics": dg.MetadataValue.json(validation_metrics),
            "training_progress": dg.MetadataValue.md(_history_markdown(trained.history)),
            "training_seconds": round(seconds, 2),
            "median_epoch_seconds": round(float(np.median(epoch_seconds)), 3),
            "config": dg.MetadataValue.json(json.loads(json.dumps(config.model_dump()))),
        }
    )
