"""MovieLens-100K import, then the exact CLI commands a user runs (no configuration)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_assets.sources.landing import LandingStore
from recsys_assets.sources.movielens import import_movielens, read_items

BIN = Path(sys.executable).parent


def test_importer_writes_landing_files(ml100k_path, tmp_path):
    store = LandingStore(str(tmp_path / "landing"))
    summary = import_movielens(ml100k_path, store)
    assert summary == {
        "events": 100_000,
        "users": 943,
        "items": 1682,
        "first_day": "1997-09-20",
        "last_day": "1998-04-22",
        "files_written": summary["files_written"],
    }
    files = store.list_files("events")
    assert len(files) == summary["files_written"] > 200
    assert sum(len(store.read_bytes(f.key).splitlines()) for f in files) == 100_000
    # re-importing writes byte-identical files (event ids are UUIDv5 of user, item, time)
    first = store.read_bytes(files[0].key)
    import_movielens(ml100k_path, store)
    assert store.read_bytes(files[0].key) == first


def test_items_keep_genres_and_release_dates(ml100k_path):
    items = {row["item_id"]: row for row in read_items(ml100k_path)}
    assert items[1]["title"] == "Toy Story (1995)"
    assert items[1]["genres"] == ["Animation", "Children", "Comedy"]
    assert items[1]["release_date"] == "1995-01-01"
    assert items[267]["release_date"] is None  # the "unknown" title has no date


@pytest.mark.slow
def test_cli_import_then_materialize_range_with_no_configuration(ml100k_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env["RECSYS_HOME"] = str(tmp_path / "home")
    imported = subprocess.run([str(BIN / "recsys"), "import-movielens", str(ml100k_path)], env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stdout[-2000:] + imported.stderr[-3000:]
    done = subprocess.run(
        [
            str(BIN / "dagster"), "asset", "materialize", "-m", "recsys_assets.definitions",
            "--select", "raw_events", "--partition-range", "1997-09-20...1998-04-22",
        ],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    from resources.lakehouse import LakehouseResource

    lakehouse = LakehouseResource(root_uri=str(tmp_path / "home" / "lakehouse"))
    raw = lakehouse.read("raw_events", columns=["event_date", "user_id", "item_id", "event_type"])
    assert raw.num_rows == 100_000
    assert len(set(raw.column("user_id").to_pylist())) == 943
    assert len(set(raw.column("item_id").to_pylist())) == 1682
    days = raw.column("event_date").to_pylist()
    assert (min(days), max(days)) == (dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    assert set(raw.column("event_type").to_pylist()) == {"rating"}
    audit = lakehouse.read("ingestion_audit")
    assert audit.num_rows == (dt.date(1998, 4, 22) - dt.date(1997, 9, 20)).days + 1
    assert sum(audit.column("dead_lettered").to_pylist()) == 0
