"""Build a point-in-time-correct training frame from the Feast offline store.

    .venv/bin/python examples/training_frame.py [--rows 5000] [--out frame.parquet]

Run it after `make demo` (or any run of the feature pipeline). It takes positive
interactions from `raw_events` as the (user_id, item_id, event_timestamp) rows and asks
Feast for the `two_tower_training` feature service: every feature value comes from the
newest feature row at or before each row's timestamp (never from the future).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from resources.feast import FeastResource  # noqa: E402
from resources.lakehouse import LakehouseResource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000, help="how many interactions to sample")
    parser.add_argument("--out", default=None, help="write the frame to this Parquet file")
    args = parser.parse_args()

    lakehouse = LakehouseResource()
    events = lakehouse.read("raw_events", columns=["user_id", "item_id", "event_type", "occurred_at"])
    positives = events.filter(pc.is_in(events.column("event_type"), pa.array(["play", "complete", "thumbs_up", "click", "rating"])))
    entity_df = (
        positives.to_pandas()
        .rename(columns={"occurred_at": "event_timestamp"})
        .sample(n=min(args.rows, positives.num_rows), random_state=0)
        .drop(columns=["event_type"])
    )

    store = FeastResource().store()
    started = time.perf_counter()
    job = store.get_historical_features(entity_df=entity_df, features=store.get_feature_service("two_tower_training"))
    frame: pd.DataFrame = job.to_df()
    print(f"{len(frame)} rows x {frame.shape[1]} columns in {time.perf_counter() - started:.1f}s")
    print(frame.head(10).to_string(max_colwidth=40))
    print("\nnull share per feature (rows before a user's first day of features have none):")
    print(frame.isna().mean().round(3).to_string())
    if args.out:
        frame.to_parquet(args.out, index=False)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
