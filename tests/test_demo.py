"""`make demo`'s pipeline end to end on a small simulated set (the slow test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_HOME=str(tmp_path / "home"), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "recsys"), "demo", "--users", "80", "--items", "60", "--days", "4"],
        env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    numbers = {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"^([a-z -]+\(?[a-z ]*\)?):\s+(\d+)", out, re.M)}
    assert numbers["events in (lines read)"] == numbers["valid events"] + numbers["duplicates removed"] + numbers["dead-lettered"]
    assert numbers["partitions written"] == 4
    assert "wall time" in out
    # the runs were recorded in the Dagster instance the UI reads
    assert any((tmp_path / "dagster_home").iterdir())
