"""The landing zone as a Dagster resource: a local folder, or an S3 prefix through dagster-aws."""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from recsys_assets import settings
from recsys_assets.sources.landing import LandingStore


class LandingZoneResource(dg.ConfigurableResource):
    """Where producers drop event batches and dimension snapshots.

    ``root_uri`` is ``$RECSYS_HOME/landing`` by default; ``s3://bucket/prefix`` lists and
    reads objects with dagster-aws' ``S3Resource`` (endpoint and credentials from its config
    or the usual AWS environment variables).
    """

    root_uri: str = Field(default_factory=settings.landing_uri, description="Landing root: folder or s3://bucket/prefix")
    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings, used for s3:// roots")

    def store(self) -> LandingStore:
        if self.root_uri.startswith("s3://"):
            return LandingStore(self.root_uri, s3_client=self.s3.get_client())
        return LandingStore(self.root_uri)
