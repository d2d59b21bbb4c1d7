"""The Definitions load and every asset is documented for the UI reader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(PROJECT_ROOT / "workspace.yaml")],
        env=env, capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_every_asset_has_docstring_group_kinds_and_owners():
    from recsys_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    specs = list(graph.get_all_asset_keys())
    assert specs
    for key in specs:
        node = graph.get(key)
        name = key.to_user_string()
        assert node.description and len(node.description) > 40, f"{name} needs a docstring for the UI"
        assert node.group_name and node.group_name != "default", f"{name} needs a group"
        assert node.kinds, f"{name} needs kinds"
        assert node.owners, f"{name} needs owners"


def test_ingestion_group_contract():
    from recsys_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    ingestion = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingestion"}
    assert {"raw_events", "dead_letter_events", "users", "items"} <= ingestion
    raw = graph.get(next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "raw_events"))
    assert raw.partitions_def is not None and raw.backfill_policy is not None
