"""Run the platform's jobs in-process (used by ``recsys demo``, benchmarks and tests).

Runs go to the Dagster instance at ``$DAGSTER_HOME`` when it is set, so they show up
in the UI afterwards; otherwise to an ephemeral instance.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import dagster as dg

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def default_instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def run_job(
    defs: dg.Definitions,
    job_name: str,
    *,
    days: tuple[dt.date, dt.date] | None = None,
    instance: dg.DagsterInstance | None = None,
    run_config: dict[str, Any] | None = None,
    raise_on_error: bool = True,
    log_level: str | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute a job of ``defs``; ``days`` runs a partition range as one run (single-run backfill).

    ``log_level`` (e.g. ``"WARNING"``) quiets the console logger; the run's events are
    stored in the instance either way.
    """
    tags = {**(tags or {}), **({RANGE_START_TAG: days[0].isoformat(), RANGE_END_TAG: days[1].isoformat()} if days else {})}
    config = dict(run_config or {})
    if log_level:
        config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance or default_instance(), tags=tags, run_config=config, raise_on_error=raise_on_error
    )
