"""The simulator: deterministic, realistic, dirty on purpose, and with learnable structure."""

from __future__ import annotations

import json

import numpy as np

from recsys_assets.sources.landing import LandingStore
from recsys_assets.sources.simulator import BAD_KINDS, simulate, write_landing
from recsys_assets.vocabulary import EVENT_TYPES, allowed_for_kids
from tests.conftest import SIM_END_DAY, small_sim_config


def test_same_seed_same_files_other_seed_other_files():
    a, b = simulate(small_sim_config()), simulate(small_sim_config())
    assert a.batches == b.batches
    assert simulate(small_sim_config(seed=12)).batches != a.batches


def test_files_are_batches_by_arrival_hour(tmp_path):
    world = simulate(small_sim_config())
    store = LandingStore(str(tmp_path))
    summary = write_landing(world, store)
    files = store.list_files("events")
    assert len(files) == summary["files_written"]
    on_time = redelivered_later = 0
    for f in files:
        parts = dict(p.split("=") for p in f.key.split("/")[1:3])
        batch_hour = f"{parts['dt']}T{parts['hour']}"
        for line in store.read_bytes(f.key).decode().splitlines():
            try:
                ingested_hour = json.loads(line)["ingested_at"][:13]
            except (ValueError, KeyError, TypeError):
                continue  # deliberately unparseable lines
            assert batch_hour >= ingested_hour, (f.key, line[:120])  # nothing arrives before it was sent
            on_time += batch_hour == ingested_hour
            redelivered_later += batch_hour > ingested_hour
    assert on_time > 0.95 * len(world.events) and redelivered_later > 0
    assert {f.arrival_day for f in files} <= {SIM_END_DAY.fromordinal(SIM_END_DAY.toordinal() - i) for i in range(6)}
    assert store.latest_dimension("users") is not None and store.latest_dimension("items") is not None


def test_events_are_complete_and_dirty_as_configured():
    world = simulate(small_sim_config())
    ev = world.events
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert ev["event_id"].is_unique
    assert (ev.loc[ev.event_type == "rating", "value"].between(1, 5)).all()
    assert ev["is_late"].sum() > 0 and world.summary["redelivered_events"] > 0
    assert set(world.summary["bad_events"]) == set(BAD_KINDS)
    lines = sum(len(v) for v in world.batches.values())
    assert lines == len(ev) + world.summary["redelivered_events"] + sum(world.summary["bad_events"].values())
    # late events really arrive days later
    late = ev[ev.is_late]
    delay_days = (np.array(late["ingested_at"].str[:10], dtype="datetime64[D]") - np.array(late["occurred_at"].str[:10], dtype="datetime64[D]")).astype(int)
    assert (delay_days >= 1).all()


def test_kids_only_see_kids_titles_and_unavailable_items_are_never_shown():
    world = simulate(small_sim_config(n_users=300, kids_share=0.3))
    items = world.items.set_index("item_id")
    kids = set(world.users.loc[world.users.is_kids, "user_id"])
    seen_by_kids = world.events[world.events.user_id.isin(kids)].item_id
    assert len(seen_by_kids) > 0
    assert all(allowed_for_kids(items.loc[i, "maturity_rating"]) for i in seen_by_kids)
    unavailable = set(items.index[~items.is_available])
    assert not set(world.events.item_id) & unavailable


def test_behaviour_follows_latent_taste():
    world = simulate(small_sim_config(n_users=300, n_days=10))
    ev = world.events
    aff = np.einsum("ij,ij->i", world.user_vectors[ev.user_id - 1], world.item_vectors[ev.item_id - 1])
    clicked = ev.event_type == "click"
    shown = ev.event_type == "impression"
    # clicked items are much closer to the user's taste than shown items on average
    assert aff[clicked.to_numpy()].mean() > aff[shown.to_numpy()].mean() + 0.1
    ratings = ev.event_type == "rating"
    assert np.corrcoef(aff[ratings.to_numpy()], ev.loc[ratings, "value"])[0, 1] > 0.4
