"""Shared fixtures: one SparkSession per test session, temp lakehouse/landing roots, Definitions.

Everything is real: local Spark, Delta tables in temp folders, Dagster in-process runs.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

# Deployment switches must be set before recsys_assets.definitions is imported: the
# daily partitions of the test Definitions start before every test data set (MovieLens
# starts 1997-09-20), and nothing may touch the project's own .recsys folder.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="recsys-test-home-"))
os.environ["RECSYS_HOME"] = str(_SESSION_HOME)
os.environ.setdefault("RECSYS_PARTITIONS_START", "1997-09-01")
os.environ.pop("RECSYS_LAKEHOUSE_URI", None)
os.environ.pop("RECSYS_LANDING_URI", None)
os.environ["RECSYS_ENV"] = "local"
# Runs go to ephemeral instances (the Makefile points DAGSTER_HOME at the demo's instance).
os.environ.pop("DAGSTER_HOME", None)
# Spark hands timestamps to Python in the process time zone; pin it so tests read UTC.
os.environ["TZ"] = "UTC"
time.tzset()

import pytest  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ML100K = (PROJECT_ROOT.parent / "shared" / "data" / "ml-100k").resolve()

# Fixed simulated days for tests (independent of today's date).
SIM_END_DAY = dt.date(2024, 3, 10)


@pytest.fixture(scope="session")
def spark_resource():
    from resources.spark import SparkResource

    return SparkResource(master="local[2]", conf={"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g"})


@pytest.fixture(scope="session")
def spark(spark_resource):
    return spark_resource.get_session()


@pytest.fixture
def lakehouse(tmp_path):
    from resources.lakehouse import LakehouseResource

    return LakehouseResource(root_uri=str(tmp_path / "lakehouse"))


@pytest.fixture
def landing(tmp_path):
    from resources.landing import LandingZoneResource

    return LandingZoneResource(root_uri=str(tmp_path / "landing"))


@pytest.fixture
def make_defs(spark_resource, tmp_path):
    """Definitions bound to the given lakehouse/landing (the session's Spark, Feast in tmp)."""

    def _make(lakehouse, landing, **extra):
        from recsys_assets.definitions import build_defs
        from resources.feast import FeastResource

        feast = FeastResource(registry_path=str(tmp_path / "feast" / "registry.db"), sqlite_path=str(tmp_path / "feast" / "online.db"))
        return build_defs({"lakehouse": lakehouse, "landing": landing, "spark": spark_resource, "feast": feast, **extra})

    return _make


@pytest.fixture(scope="session")
def ml100k_path() -> Path:
    if not (ML100K / "u.data").exists():
        pytest.fail(f"MovieLens-100K not found at {ML100K} (tests expect ../shared/data/ml-100k beside the project)")
    return ML100K


def small_sim_config(**overrides):
    from recsys_assets.sources.simulator import SimulationConfig

    params = dict(n_users=120, n_items=80, n_days=6, end_day=SIM_END_DAY, seed=11, bad_event_rate=0.03, duplicate_rate=0.03, late_event_rate=0.05)
    params.update(overrides)
    return SimulationConfig(**params)
