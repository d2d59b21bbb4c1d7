"""Resource sets per deployment, chosen by ``RECSYS_ENV`` (``local`` or ``production``).

``local`` (the default, used by ``make demo`` and most tests): lakehouse and landing
zone in ``$RECSYS_HOME``, Spark ``local[*]``, Feast with sqlite.

``production``: the same resources pointed at shared infrastructure through
environment variables: ``RECSYS_LAKEHOUSE_URI``/``RECSYS_LANDING_URI`` on S3
(credentials and endpoint from ``AWS_*``), ``RECSYS_SPARK_MASTER`` for the cluster.
"""

from __future__ import annotations

import os
from typing import Any

from dagster_aws.s3 import S3Resource

from recsys_assets import settings
from resources.alerts import AlertResource
from resources.feast import FeastResource
from resources.lakehouse import LakehouseResource
from resources.landing import LandingZoneResource
from resources.spark import SparkResource


def _s3_resource() -> S3Resource:
    return S3Resource(
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
    )


def local_resources() -> dict[str, Any]:
    return {
        "lakehouse": LakehouseResource(),
        "landing": LandingZoneResource(),
        "spark": SparkResource(),
        "feast": FeastResource(),
        "alerts": AlertResource(),
    }


def production_resources() -> dict[str, Any]:
    return {
        "lakehouse": LakehouseResource(root_uri=settings.lakehouse_uri()),
        "landing": LandingZoneResource(root_uri=settings.landing_uri(), s3=_s3_resource()),
        "spark": SparkResource(master=settings.spark_master()),
        "feast": FeastResource(
            registry_type="sql",
            registry_path=os.environ.get("RECSYS_FEAST_REGISTRY_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
            online_store_type="redis",
            redis_connection_string=os.environ.get("RECSYS_FEAST_REDIS", "127.0.0.1:6379"),
        ),
        "alerts": AlertResource(),
    }


def resources_for(deployment: str | None = None) -> dict[str, Any]:
    deployment = deployment or settings.deployment()
    return production_resources() if deployment == "production" else local_resources()
