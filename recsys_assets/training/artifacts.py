"""Versioned model artifacts under the lakehouse root, and the registry of trained versions.

``artifacts/models/<version>/`` holds ``model.pt`` (weights, config, feature schema,
history), ``ids.npz`` (the entity ids behind the tower indices) and ``manifest.json``
(config, feature schema, training data version, metrics). The version is a content
hash of the weights, the ids and the manifest's training inputs: retraining on the same
data with the same seed gives the same version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from recsys_assets.training.two_tower import TrainedTwoTower
from resources.lakehouse import LakehouseResource

MODEL_VERSIONS_TABLE = "model_versions"
MODEL_VERSIONS_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("trained_at", pa.timestamp("us", tz="UTC")),
        ("artifact_uri", pa.string()),
        ("training_data_version", pa.int64()),
        ("train_pairs", pa.int64()),
        ("best_epoch", pa.int32()),
        ("validation_metrics", pa.string()),  # JSON
        ("config", pa.string()),  # JSON
    ]
)


@dataclass
class ModelArtifact:
    version: str
    model: TrainedTwoTower
    user_ids: np.ndarray  # int64, sorted: tower index -> user_id
    item_ids: np.ndarray  # int64, sorted: tower index -> item_id
    manifest: dict[str, Any]

    def user_index(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(self.user_ids)}

    def item_index(self) -> dict[int, int]:
        return {int(v): i for i, v in enumerate(self.item_ids)}


def _ids_bytes(user_ids: np.ndarray, item_ids: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, user_ids=np.asarray(user_ids, dtype=np.int64), item_ids=np.asarray(item_ids, dtype=np.int64))
    return buf.getvalue()


def content_version(model_bytes: bytes, ids_bytes: bytes, inputs: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for part in (model_bytes, ids_bytes, json.dumps(inputs, sort_keys=True, default=str).encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def save_model(
    lakehouse: LakehouseResource,
    trained: TrainedTwoTower,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    manifest: dict[str, Any],
) -> ModelArtifact:
    """Write the artifact under its content-hash version; returns it (with ``version``)."""
    model_bytes = trained.to_bytes()
    ids_bytes = _ids_bytes(user_ids, item_ids)
    inputs = {k: manifest.get(k) for k in ("config", "feature_schema", "training_data")}
    version = content_version(model_bytes, ids_bytes, inputs)
    manifest = {**manifest, "model_version": version}
    base = f"models/{version}"
    lakehouse.write_artifact(f"{base}/model.pt", model_bytes)
    lakehouse.write_artifact(f"{base}/ids.npz", ids_bytes)
    lakehouse.write_json_artifact(f"{base}/manifest.json", manifest)
    return ModelArtifact(version, trained, np.asarray(user_ids), np.asarray(item_ids), manifest)


def load_model(lakehouse: LakehouseResource, version: str) -> ModelArtifact:
    base = f"models/{version}"
    if not lakehouse.artifact_exists(f"{base}/model.pt"):
        raise FileNotFoundError(f"no model artifact {version} under {lakehouse.artifact_uri('models')}")
    trained = TrainedTwoTower.from_bytes(lakehouse.read_artifact(f"{base}/model.pt"))
    ids = np.load(io.BytesIO(lakehouse.read_artifact(f"{base}/ids.npz")))
    return ModelArtifact(version, trained, ids["user_ids"], ids["item_ids"], lakehouse.read_json_artifact(f"{base}/manifest.json"))


def register_version(lakehouse: LakehouseResource, artifact: ModelArtifact, trained_at: dt.datetime) -> int:
    """Append the version to ``model_versions`` (the registry downstream assets read)."""
    m = artifact.manifest
    row = {
        "model_version": artifact.version,
        "trained_at": trained_at,
        "artifact_uri": lakehouse.artifact_uri("models", artifact.version),
        "training_data_version": m.get("training_data", {}).get("training_examples_version"),
        "train_pairs": m.get("training_data", {}).get("train_pairs"),
        "best_epoch": artifact.model.best_epoch,
        "validation_metrics": json.dumps(m.get("validation_metrics", {})),
        "config": json.dumps(m.get("config", {}), sort_keys=True),
    }
    return lakehouse.append(MODEL_VERSIONS_TABLE, pa.Table.from_pylist([row], schema=MODEL_VERSIONS_SCHEMA))


def latest_version(lakehouse: LakehouseResource) -> str | None:
    """The most recently trained model version (None before the first training)."""
    if not lakehouse.exists(MODEL_VERSIONS_TABLE):
        return None
    table = lakehouse.read(MODEL_VERSIONS_TABLE, columns=["model_version", "trained_at"])
    if table.num_rows == 0:
        return None
    return table.sort_by([("trained_at", "descending")]).column("model_version")[0].as_py()
