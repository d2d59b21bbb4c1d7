"""Deployment switches, read from the environment.

This is the only module that reads environment variables for *where* things live.
Everything else is configured through Dagster resources and `dg.Config`, whose
defaults come from here so that a laptop needs no configuration at all.

| variable                  | default                          | meaning                                   |
|---------------------------|----------------------------------|-------------------------------------------|
| ``RECSYS_HOME``           | ``<project>/.recsys``            | local working folder (data, Dagster home) |
| ``RECSYS_LAKEHOUSE_URI``  | ``$RECSYS_HOME/lakehouse``       | Delta tables and artifacts (``s3://...``) |
| ``RECSYS_LANDING_URI``    | ``$RECSYS_HOME/landing``         | landing zone of producer files            |
| ``RECSYS_PARTITIONS_START`` | first day in the landing manifest | first daily partition (YYYY-MM-DD)   |
| ``RECSYS_ENV``            | ``local``                        | ``local`` or ``production`` resources     |
| ``RECSYS_SPARK_MASTER``   | ``local[*]``                     | Spark master URL                          |
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout this package was installed from (editable install), else the cwd."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


def recsys_home() -> Path:
    return Path(os.environ.get("RECSYS_HOME") or project_root() / ".recsys").resolve()


def lakehouse_uri() -> str:
    return os.environ.get("RECSYS_LAKEHOUSE_URI") or str(recsys_home() / "lakehouse")


def landing_uri() -> str:
    return os.environ.get("RECSYS_LANDING_URI") or str(recsys_home() / "landing")


def deployment() -> str:
    env = os.environ.get("RECSYS_ENV", "local").strip().lower()
    if env not in {"local", "production"}:
        raise ValueError(f"RECSYS_ENV must be 'local' or 'production', got {env!r}")
    return env


def spark_master() -> str:
    return os.environ.get("RECSYS_SPARK_MASTER", "local[*]")


def partitions_start_override() -> str | None:
    return os.environ.get("RECSYS_PARTITIONS_START") or None


# object_store / deltalake options that may come from the environment for S3.
_S3_OPTION_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_S3_ALLOW_UNSAFE_RENAME",
    "AWS_S3_LOCKING_PROVIDER",
    "DELTA_DYNAMO_TABLE_NAME",
    "AWS_CONDITIONAL_PUT",
)


def s3_storage_options_from_env() -> dict[str, str]:
    """deltalake storage options for an ``s3://`` lakehouse, taken from AWS_* variables."""
    opts = {k: os.environ[k] for k in _S3_OPTION_VARS if os.environ.get(k)}
    if "AWS_REGION" not in opts and "AWS_DEFAULT_REGION" in opts:
        opts["AWS_REGION"] = opts["AWS_DEFAULT_REGION"]
    opts.pop("AWS_DEFAULT_REGION", None)
    return opts
