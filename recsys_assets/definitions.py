"""The Dagster Definitions: every asset, check, job, schedule and sensor of the platform.

Loaded by ``workspace.yaml`` (``dagster dev``) and by ``dagster ... -m recsys_assets.definitions``.
All steps of a run execute in one process so they share one SparkSession.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from recsys_assets.automation.schedules import ALL_SCHEDULES
from recsys_assets.automation.sensors import ALL_SENSORS
from recsys_assets.evaluation import assets as evaluation_assets
from recsys_assets.feature_store import assets as feature_store_assets
from recsys_assets.features import assets as feature_assets
from recsys_assets.ingestion import assets as ingestion_assets
from recsys_assets.jobs import ALL_JOBS
from recsys_assets.partitions import daily_partitions
from recsys_assets.quality.gx_suites import all_gx_checks
from recsys_assets.quality.monitors import all_monitor_checks
from recsys_assets.recommendations import assets as recommendation_assets
from recsys_assets.retrieval import assets as retrieval_assets
from recsys_assets.training import assets as training_assets
from resources.deployments import resources_for

ASSET_MODULES = [
    ingestion_assets,
    feature_assets,
    feature_store_assets,
    training_assets,
    retrieval_assets,
    recommendation_assets,
    evaluation_assets,
]


def build_defs(resources: dict[str, Any] | None = None) -> dg.Definitions:
    """The platform's Definitions with the deployment's resources, overridden by ``resources``."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=[*all_gx_checks(daily_partitions), *all_monitor_checks(daily_partitions)],
        jobs=ALL_JOBS,
        schedules=ALL_SCHEDULES,
        sensors=ALL_SENSORS,
        resources={**resources_for(), **(resources or {})},
        executor=dg.in_process_executor,
    )


defs = build_defs()
