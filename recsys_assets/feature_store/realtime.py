"""Real-time user activity for the push-fed ``user_realtime_activity`` feature view.

A stream consumer (or any service that sees events as they happen) calls
:func:`push_user_activity` with a batch of recent events; the online store then serves
each user's most recent watches and last-5-minute counts without waiting for the daily
batch. Pure computation in :func:`recent_activity`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

WATCH_EVENT_TYPES = ("play", "complete")
ARCHIVE_TABLE = "realtime_user_activity"
# The push source's batch table (where pushed rows are archived); it must exist, empty or
# not, for `feast materialize` to read.
ARCHIVE_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("recently_watched", pa.list_(pa.int64())),
        ("events_last_5m", pa.int64()),
        ("plays_last_5m", pa.int64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ]
)


def recent_activity(events: pd.DataFrame, now: dt.datetime, recent_items: int = 10, window_minutes: int = 5) -> pd.DataFrame:
    """Per user in ``events`` (columns user_id, item_id, event_type, occurred_at):
    the ``recent_items`` most recently watched distinct items (newest first) and the number of
    events/plays in the last ``window_minutes`` before ``now``."""
    ev = events.copy()
    ev["occurred_at"] = pd.to_datetime(ev["occurred_at"], utc=True)
    ev = ev[ev["occurred_at"] <= now]
    since = now - dt.timedelta(minutes=window_minutes)
    rows = []
    for user_id, group in ev.groupby("user_id", sort=True):
        watched = group[group["event_type"].isin(WATCH_EVENT_TYPES)].sort_values("occurred_at", ascending=False)
        recent = list(dict.fromkeys(int(i) for i in watched["item_id"]))[:recent_items]
        last = group[group["occurred_at"] > since]
        rows.append(
            {
                "user_id": int(user_id),
                "recently_watched": recent,
                "events_last_5m": int(len(last)),
                "plays_last_5m": int((last["event_type"] == "play").sum()),
                "event_timestamp": now,
            }
        )
    return pd.DataFrame(rows, columns=["user_id", "recently_watched", "events_last_5m", "plays_last_5m", "event_timestamp"])


def push_user_activity(store, events: pd.DataFrame, now: dt.datetime | None = None) -> int:
    """Compute recent activity and push it to the online store; returns the users pushed."""
    from feast.data_source import PushMode

    now = now or dt.datetime.now(dt.timezone.utc)
    frame = recent_activity(events, now)
    if len(frame):
        store.push("user_activity_push", frame, to=PushMode.ONLINE)
    return len(frame)
