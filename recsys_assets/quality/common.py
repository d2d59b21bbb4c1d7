"""Helpers every check module shares: the run's day range, JSON-safe metadata values."""

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd


def run_day_range(context: dg.AssetCheckExecutionContext) -> tuple[dt.date, dt.date] | None:
    """The closed day range of the run's partitions (None when the run is not partitioned).

    A single-partition run has ``has_partition_key`` but not ``has_partition_key_range``
    (that one is set only for ranges, e.g. single-run backfills): test both.
    """
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def jsonable(value: Any) -> Any:
    """Plain JSON values (NaN/inf -> None, numpy/dates -> Python/ISO strings)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return str(value)
