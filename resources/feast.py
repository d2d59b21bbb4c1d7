"""Feast as a Dagster resource: the repository objects, the registry and the online store.

Local default: a file registry and a sqlite online store in ``$RECSYS_HOME/feast`` (the
same files ``feature_repo/feature_store.yaml`` points the ``feast`` CLI at). Production:
``registry_type="sql"`` with a PostgreSQL URL and ``online_store_type="redis"``.
The offline store is always the Delta-aware DuckDB store.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from recsys_assets import settings

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

FEATURE_REPO = settings.project_root() / "feature_repo"
# Feast's usage telemetry would try to reach the network; this platform runs without it.
os.environ.setdefault("FEAST_USAGE", "False")


def _feast_dir() -> Path:
    return settings.recsys_home() / "feast"


def load_repo_module(repo_path: Path):
    """Import ``feature_repo/recsys_features.py`` under a private module name."""
    path = Path(repo_path) / "recsys_features.py"
    name = "_recsys_feature_repo"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Feast repository module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FeastResource(dg.ConfigurableResource):
    """The platform's Feast feature store."""

    repo_path: str = Field(default=str(FEATURE_REPO), description="Folder of the Feast repository (recsys_features.py)")
    project: str = "recsys"
    registry_type: Literal["file", "sql"] = "file"
    registry_path: str = Field(
        default_factory=lambda: str(_feast_dir() / "registry.db"),
        description="File registry path, or a SQLAlchemy URL for registry_type=sql (postgresql+psycopg://...)",
    )
    online_store_type: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = Field(default_factory=lambda: str(_feast_dir() / "online_store.db"))
    redis_connection_string: str = Field(default="127.0.0.1:6379", description="host:port[,password=...,db=...] for redis")

    def repo_config(self) -> RepoConfig:
        from feast.repo_config import RegistryConfig, RepoConfig

        from recsys_assets.feature_store.delta_offline_store import DeltaDuckDBOfflineStoreConfig

        if self.registry_type == "file" and "://" not in self.registry_path:
            Path(self.registry_path).parent.mkdir(parents=True, exist_ok=True)
        online: dict[str, Any]
        if self.online_store_type == "redis":
            online = {"type": "redis", "connection_string": self.redis_connection_string}
        else:
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            online = {"type": "sqlite", "path": self.sqlite_path}
        if self.registry_type == "sql":
            from feast.infra.registry.sql import SqlRegistryConfig

            registry: RegistryConfig = SqlRegistryConfig(path=self.registry_path, cache_ttl_seconds=60)
        else:
            registry = RegistryConfig(registry_type="file", path=self.registry_path, cache_ttl_seconds=60)
        return RepoConfig(
            project=self.project,
            provider="local",
            registry=registry,
            offline_store=DeltaDuckDBOfflineStoreConfig(),
            online_store=online,
            entity_key_serialization_version=3,
            repo_path=Path(self.repo_path),
        )

    def cli_yaml_path(self) -> Path:
        """Where :meth:`write_cli_yaml` puts the equivalent ``feature_store.yaml``."""
        base = Path(self.registry_path).parent if self.registry_type == "file" else Path(self.sqlite_path).parent
        return base / "feature_store.yaml"

    def write_cli_yaml(self) -> Path:
        """Write this configuration as a ``feature_store.yaml`` for the ``feast`` CLI:
        ``feast -c feature_repo -f <that file> apply``."""
        import yaml

        online = (
            {"type": "redis", "connection_string": self.redis_connection_string}
            if self.online_store_type == "redis"
            else {"type": "sqlite", "path": str(Path(self.sqlite_path).resolve())}
        )
        registry_path = self.registry_path if self.registry_type == "sql" else str(Path(self.registry_path).resolve())
        config = {
            "project": self.project,
            "provider": "local",
            "registry": {"registry_type": self.registry_type, "path": registry_path},
            "offline_store": {"type": "recsys_assets.feature_store.delta_offline_store.DeltaDuckDBOfflineStore"},
            "online_store": online,
            "entity_key_serialization_version": 3,
        }
        path = self.cli_yaml_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Written by the feast_registry asset; use with `feast -c feature_repo -f <this file>`.\n" + yaml.safe_dump(config, sort_keys=False))
        return path

    def store(self) -> FeatureStore:
        from feast import FeatureStore

        return FeatureStore(config=self.repo_config(), repo_path=self.repo_path)

    def repo_objects(self, lakehouse_uri: str) -> dict[str, object]:
        return load_repo_module(Path(self.repo_path)).build(lakehouse_uri)

    def apply(self, lakehouse_uri: str) -> dict[str, list[str]]:
        """Make the registry match the repository: add/update its objects, delete the rest.

        ``FeatureStore.apply`` alone only adds; like ``feast apply``, this also removes
        objects that were deleted from the repository (and their online tables).
        """
        from feast.repo_contents import RepoContents
        from feast.repo_operations import extract_objects_for_apply_delete
        from feast import Entity, FeatureService, FeatureView
        from feast.data_source import DataSource
        from feast.on_demand_feature_view import OnDemandFeatureView
        from feast.stream_feature_view import StreamFeatureView

        objects = list(self.repo_objects(lakehouse_uri).values())
        sources = [o for o in objects if isinstance(o, DataSource)]
        for view in objects:
            if isinstance(view, FeatureView) and view.batch_source is not None and view.batch_source not in sources:
                sources.append(view.batch_source)
        repo = RepoContents(
            projects=[],
            data_sources=sources,
            feature_views=[o for o in objects if isinstance(o, FeatureView) and not isinstance(o, StreamFeatureView)],
            on_demand_feature_views=[o for o in objects if isinstance(o, OnDemandFeatureView)],
            stream_feature_views=[o for o in objects if isinstance(o, StreamFeatureView)],
            label_views=[],
            entities=[o for o in objects if isinstance(o, Entity)],
            feature_services=[o for o in objects if isinstance(o, FeatureService)],
            permissions=[],
        )
        store = self.store()
        to_apply, to_delete, _, _ = extract_objects_for_apply_delete(self.project, store.registry, repo)
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)
        return {
            "applied": sorted(f"{type(o).__name__}:{o.name}" for o in to_apply),
            "deleted": sorted(f"{type(o).__name__}:{o.name}" for o in to_delete),
        }
