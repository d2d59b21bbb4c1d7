"""A simulated streaming platform that writes the landing zone as production producers would.

Users (country/region, age, kids profiles) browse a catalog (genres, maturity ratings,
release dates, availability). Behaviour follows latent tastes: each user and item has
a unit vector built from genre directions plus noise (plus a regional tilt), and

* the platform's current rows show items by ``taste_weight * affinity + popularity``,
* a shown item is clicked with probability ``sigmoid(click_scale * affinity + ...)``,
* a click becomes a play whose watch fraction, completion, rating and thumbs all rise
  with affinity,

so a model that learns the tastes beats popularity. A configurable share of bad
events, exact re-deliveries and late arrivals is mixed in. Everything is seeded and
deterministic. Dagster-free: ``simulate(SimulationConfig(...))`` then ``write_landing``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from recsys_assets.sources.landing import (
    ITEMS_PREFIX,
    USERS_PREFIX,
    LandingStore,
    dimension_key,
    event_batch_key,
)
from recsys_assets.vocabulary import (
    COUNTRY_REGION,
    GENRES,
    REGIONS,
    age_band,
    allowed_for_kids,
)

KIDS_GENRES = ("Animation", "Children", "Musical", "Fantasy", "Adventure", "Comedy")
ADULT_GENRES = ("Horror", "Thriller", "Crime", "War", "Film-Noir")
DEVICES = ("tv", "mobile", "web", "tablet")
SURFACES = ("home_row", "trending_row", "because_you_watched", "search")

# Kinds of bad lines the simulator mixes in; each is named after the dead-letter
# reason ingestion must give it.
BAD_KINDS = (
    "null_id",
    "malformed_id",
    "unknown_user",
    "unknown_item",
    "unknown_event_type",
    "malformed_timestamp",
    "future_timestamp",
    "stale_timestamp",
    "invalid_value",
    "oversized_payload",
    "unparseable_line",
)

_ADJECTIVES = (
    "Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Midnight", "Lost", "Wild", "Frozen",
    "Electric", "Secret", "Distant", "Burning", "Quiet", "Endless", "Iron", "Paper", "Velvet", "Hollow",
)  # fmt: skip
_NOUNS = (
    "River", "Kingdom", "Signal", "Harbor", "Garden", "Empire", "Orbit", "Letter", "Mountain", "Circus",
    "Detective", "Summer", "Machine", "Island", "Promise", "Frontier", "Station", "Dragon", "Mirror", "Road",
)  # fmt: skip


@dataclass
class SimulationConfig:
    """Size, behaviour and dirtiness of a simulated data set."""

    n_users: int = 1000
    n_items: int = 500
    n_days: int = 30
    end_day: dt.date | None = None  # last day of activity (UTC); default: yesterday
    seed: int = 7
    sessions_per_user_day: float = 0.5
    impressions_per_session: int = 8
    latent_dim: int = 16
    taste_weight: float = 3.0  # how personalised the platform's current rows already are
    click_scale: float = 5.0
    click_bias: float = -2.2
    popularity_sigma: float = 1.0  # spread of items' log-popularity (lower: taste matters more)
    kids_share: float = 0.08
    new_item_share: float = 0.06
    unavailable_share: float = 0.03
    bad_event_rate: float = 0.01
    duplicate_rate: float = 0.01
    late_event_rate: float = 0.02
    max_late_days: int = 5
    producer: str = "collector"

    def resolved_end_day(self) -> dt.date:
        return self.end_day or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))

    def start_day(self) -> dt.date:
        return self.resolved_end_day() - dt.timedelta(days=self.n_days - 1)


@dataclass
class SimulatedWorld:
    """Everything the simulator made: dimensions, the true events, the latent tastes, the landing lines."""

    config: SimulationConfig
    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame  # the true, unique, valid events
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    batches: dict[str, list[str]] = field(repr=False, default_factory=dict)  # landing key -> lines
    summary: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------- world
def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _make_users(cfg: SimulationConfig, rng: np.random.Generator, genre_vecs: np.ndarray, region_tilt: dict) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    n = cfg.n_users
    countries = np.array(list(COUNTRY_REGION))
    weights = np.array([30, 5, 6, 8, 3, 8, 6, 6, 5, 9, 5, 4, 5], dtype=float)
    country = rng.choice(countries, size=n, p=weights / weights.sum())
    region = np.array([COUNTRY_REGION[c] for c in country])
    is_kids = rng.random(n) < cfg.kids_share
    age = np.where(is_kids, rng.integers(6, 13, size=n), np.clip(13 + rng.gamma(4.0, 6.5, size=n), 13, 85)).astype(int)
    start = cfg.start_day()
    signup = [start - dt.timedelta(days=int(d)) for d in rng.integers(1, 1500, size=n)]
    genre_idx = {g: i for i, g in enumerate(GENRES)}
    kids_idx = [genre_idx[g] for g in KIDS_GENRES]
    vecs = np.empty((n, cfg.latent_dim))
    for u in range(n):
        pool = kids_idx if is_kids[u] else range(len(GENRES))
        favs = rng.choice(list(pool), size=int(rng.integers(1, 4)), replace=False)
        w = rng.dirichlet(np.ones(len(favs)))
        vecs[u] = w @ genre_vecs[favs] + 0.35 * rng.normal(size=cfg.latent_dim) + 0.3 * region_tilt[region[u]]
    vecs = _unit(vecs)
    activity = rng.lognormal(np.log(cfg.sessions_per_user_day) - 0.32, 0.8, size=n)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "country": country,
            "region": region,
            "age": age,
            "age_band": [age_band(int(a)) for a in age],
            "is_kids": is_kids,
            "signup_date": [d.isoformat() for d in signup],
        }
    )
    return users, vecs, activity


def _make_items(cfg: SimulationConfig, rng: np.random.Generator, genre_vecs: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    m = cfg.n_items
    genre_weights = rng.dirichlet(np.full(len(GENRES), 2.0))
    start = cfg.start_day()
    rows, vecs = [], np.empty((m, cfg.latent_dim))
    titles: Counter = Counter()
    for i in range(m):
        k = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        genres = list(rng.choice(len(GENRES), size=k, replace=False, p=genre_weights))
        names = [GENRES[g] for g in genres]
        vecs[i] = genre_vecs[genres].mean(axis=0) + 0.35 * rng.normal(size=cfg.latent_dim)
        if set(names) & {"Children", "Animation"}:
            rating = str(rng.choice(["G", "PG"], p=[0.6, 0.4]))
        elif set(names) & set(ADULT_GENRES):
            rating = str(rng.choice(["PG-13", "R", "NC-17"], p=[0.3, 0.6, 0.1]))
        else:
            rating = str(rng.choice(["G", "PG", "PG-13", "R"], p=[0.1, 0.3, 0.4, 0.2]))
        is_new = rng.random() < cfg.new_item_share
        if is_new:
            release = start + dt.timedelta(days=int(rng.integers(0, cfg.n_days)))
            available_from = release
        else:
            release = start - dt.timedelta(days=int(rng.gamma(1.3, 2500)) + 30)
            available_from = max(release, start - dt.timedelta(days=int(rng.integers(30, 1000))))
        title = f"The {_ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))]} {_NOUNS[int(rng.integers(len(_NOUNS)))]}"
        titles[title] += 1
        if titles[title] > 1:
            title = f"{title} {titles[title]}"
        rows.append(
            {
                "item_id": i + 1,
                "title": title,
                "genres": names,
                "release_date": release.isoformat(),
                "maturity_rating": rating,
                "runtime_minutes": int(rng.integers(75, 160)),
                "is_available": bool(rng.random() >= cfg.unavailable_share),
                "available_from": available_from.isoformat(),
            }
        )
    items = pd.DataFrame(rows)
    popularity = rng.normal(0.0, cfg.popularity_sigma, size=m)  # log-popularity, independent of taste
    return items, _unit(vecs), popularity


# --------------------------------------------------------------------------------- events
_US = 1_000_000


def _day_events(
    cfg: SimulationConfig,
    rng: np.random.Generator,
    day: dt.date,
    users: pd.DataFrame,
    user_vecs: np.ndarray,
    activity: np.ndarray,
    items: pd.DataFrame,
    item_vecs: np.ndarray,
    popularity: np.ndarray,
    session_offset: int,
) -> tuple[dict[str, np.ndarray], int]:
    weekday_factor = 1.25 if day.weekday() >= 5 else 1.0
    n_sessions = rng.poisson(activity * weekday_factor)
    sess_user = np.repeat(np.arange(len(users)), n_sessions)
    s = len(sess_user)
    if s == 0:
        return {}, 0
    day_start_us = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc).timestamp()) * _US
    start_sec = np.clip(rng.normal(20 * 3600, 3.5 * 3600, size=s), 0, 86_400 - 600).astype(np.int64)
    device = rng.integers(0, len(DEVICES), size=s)
    surface = rng.choice(len(SURFACES), size=s, p=[0.6, 0.15, 0.15, 0.1])

    released = pd.to_datetime(items["available_from"]).dt.date.to_numpy() <= day
    base_ok = items["is_available"].to_numpy() & released
    kids_ok = base_ok & items["maturity_rating"].map(allowed_for_kids).to_numpy()
    runtime_s = items["runtime_minutes"].to_numpy() * 60
    is_kids = users["is_kids"].to_numpy()

    k = cfg.impressions_per_session
    cols: dict[str, list[np.ndarray]] = defaultdict(list)
    for lo in range(0, s, 4000):
        hi = min(s, lo + 4000)
        su = sess_user[lo:hi]
        aff = user_vecs[su] @ item_vecs.T
        logits = cfg.taste_weight * aff + popularity[None, :]
        allowed = np.where(is_kids[su][:, None], kids_ok[None, :], base_ok[None, :])
        logits = np.where(allowed, logits, -np.inf)
        perturbed = logits + rng.gumbel(size=logits.shape)
        kk = min(k, int(allowed.sum(axis=1).min()))
        shown = np.argsort(-perturbed, axis=1)[:, :kk]
        shown_aff = np.take_along_axis(aff, shown, axis=1)
        n = shown.size
        sess = np.repeat(np.arange(lo, hi), kk)
        pos = np.tile(np.arange(kk), hi - lo)
        item = shown.ravel()
        a = shown_aff.ravel()
        imp_t = day_start_us + (start_sec[sess] + 3 * pos) * _US + rng.integers(0, _US, size=n)
        _append(cols, sess, item, "impression", imp_t, np.full(n, np.nan), pos)

        click = rng.random(n) < 1 / (1 + np.exp(-(cfg.click_scale * a + cfg.click_bias - 0.08 * pos)))
        c_sess, c_item, c_a, c_pos = sess[click], item[click], a[click], pos[click]
        c_t = imp_t[click] + rng.integers(3, 40, size=click.sum()) * _US
        _append(cols, c_sess, c_item, "click", c_t, np.full(len(c_t), np.nan), c_pos)
        play_t = c_t + 2 * _US
        frac = np.clip(1 / (1 + np.exp(-(4.0 * c_a + rng.normal(0, 0.8, size=len(c_a))))), 0.01, 1.0)
        watch = np.round(frac * runtime_s[c_item]).astype(float)
        _append(cols, c_sess, c_item, "play", play_t, watch, c_pos)
        complete = frac > 0.8
        _append(cols, c_sess[complete], c_item[complete], "complete", play_t[complete] + watch[complete].astype(np.int64) * _US, watch[complete], c_pos[complete])
        end_t = play_t + watch.astype(np.int64) * _US
        rated = rng.random(len(c_a)) < np.where(complete, 0.35, 0.06)
        stars = np.clip(np.round(3 + 2.5 * c_a + rng.normal(0, 0.6, size=len(c_a))), 1, 5)
        _append(cols, c_sess[rated], c_item[rated], "rating", end_t[rated] + 30 * _US, stars[rated], c_pos[rated])
        up = rng.random(len(c_a)) < np.where(c_a > 0.4, 0.2, 0.02)
        _append(cols, c_sess[up], c_item[up], "thumbs_up", end_t[up] + 40 * _US, np.full(up.sum(), np.nan), c_pos[up])
        down = (~up) & (rng.random(len(c_a)) < np.where(frac < 0.2, 0.3, 0.01))
        _append(cols, c_sess[down], c_item[down], "thumbs_down", end_t[down] + 40 * _US, np.full(down.sum(), np.nan), c_pos[down])

    sess = np.concatenate(cols["session"])
    out = {
        "user_id": users["user_id"].to_numpy()[sess_user[sess]],
        "item_id": items["item_id"].to_numpy()[np.concatenate(cols["item"])],
        "event_type": np.concatenate(cols["event_type"]),
        "occurred_us": np.concatenate(cols["t"]),
        "value": np.concatenate(cols["value"]),
        "position": np.concatenate(cols["position"]),
        "device": np.array(DEVICES)[device[sess]],
        "surface": np.array(SURFACES)[surface[sess]],
        "session_id": np.char.add(f"s{cfg.seed}-", (sess + session_offset).astype(str)),
    }
    return out, s


def _append(cols, sess, item, event_type, t, value, pos) -> None:
    cols["session"].append(sess)
    cols["item"].append(item)
    cols["event_type"].append(np.full(len(sess), event_type, dtype=object))
    cols["t"].append(np.asarray(t, dtype=np.int64))
    cols["value"].append(np.asarray(value, dtype=float))
    cols["position"].append(np.asarray(pos, dtype=np.int64))


def _iso(us: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(us.astype("datetime64[us]").astype("datetime64[ms]"), unit="ms"), "Z")


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i * 16 : (i + 1) * 16], version=4)) for i in range(n)]


def _event_line(e: dict) -> str:
    value = "" if e["value"] is None else f', "value": {e["value"]}'
    return (
        f'{{"event_id": "{e["event_id"]}", "user_id": {e["user_id"]}, "item_id": {e["item_id"]}, '
        f'"event_type": "{e["event_type"]}", "occurred_at": "{e["occurred_at"]}", "ingested_at": "{e["ingested_at"]}"{value}, '
        f'"context": {{"device": "{e["device"]}", "session_id": "{e["session_id"]}", "surface": "{e["surface"]}", "position": {e["position"]}}}}}'
    )


def _bad_line(kind: str, e: dict, cfg: SimulationConfig, rng: np.random.Generator) -> str:
    e = dict(e)
    if kind == "null_id":
        e["user_id" if rng.random() < 0.5 else "item_id"] = "null"
    elif kind == "malformed_id":
        e["item_id"] = '"item-abc"'
    elif kind == "unknown_user":
        e["user_id"] = cfg.n_users + 10_000 + int(rng.integers(1000))
    elif kind == "unknown_item":
        e["item_id"] = cfg.n_items + 10_000 + int(rng.integers(1000))
    elif kind == "unknown_event_type":
        e["event_type"] = str(rng.choice(["scroll", "hover", "PLAY"]))
    elif kind == "malformed_timestamp":
        e["occurred_at"] = str(rng.choice(["2024-13-45T25:61:00Z", "yesterday", "17/03/2024 10:00", ""]))
    elif kind == "future_timestamp":
        ing = np.datetime64(e["ingested_at"][:-1])
        e["occurred_at"] = str(ing + np.timedelta64(int(rng.integers(2, 6)), "D")) + "Z"
    elif kind == "stale_timestamp":
        ing = np.datetime64(e["ingested_at"][:-1])
        e["occurred_at"] = str(ing - np.timedelta64(int(rng.integers(400, 900)), "D")) + "Z"
    elif kind == "invalid_value":
        e["event_type"], e["value"] = "rating", float(rng.choice([0.0, 7.0, -3.0]))
    line = _event_line(e)
    if kind == "oversized_payload":
        line = line[:-2] + f', "debug": "{"x" * 70_000}"}}}}'
    elif kind == "unparseable_line":
        line = line[: len(line) // 2]
    return line


def simulate(cfg: SimulationConfig | None = None) -> SimulatedWorld:
    """Generate a world and its landing batches in memory (see :func:`write_landing`)."""
    cfg = cfg or SimulationConfig()
    rng = np.random.default_rng(cfg.seed)
    genre_vecs = _unit(rng.normal(size=(len(GENRES), cfg.latent_dim)))
    region_tilt = {r: _unit(rng.normal(size=cfg.latent_dim)) for r in REGIONS}
    users, user_vecs, activity = _make_users(cfg, rng, genre_vecs, region_tilt)
    items, item_vecs, popularity = _make_items(cfg, rng, genre_vecs)

    start, end = cfg.start_day(), cfg.resolved_end_day()
    end_us = int(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc).timestamp()) * _US
    parts, offset = [], 0
    for d in range(cfg.n_days):
        day = start + dt.timedelta(days=d)
        part, n_sess = _day_events(cfg, rng, day, users, user_vecs, activity, items, item_vecs, popularity, offset)
        offset += n_sess
        if part:
            parts.append(pd.DataFrame(part))
    events = pd.concat(parts, ignore_index=True)
    events = events[events["occurred_us"] < end_us - 60 * _US].sort_values("occurred_us", kind="stable").reset_index(drop=True)

    n = len(events)
    delay = rng.exponential(20.0, size=n) * _US
    late = rng.random(n) < cfg.late_event_rate
    occurred_day = events["occurred_us"].to_numpy() // (86_400 * _US)
    last_day = end_us // (86_400 * _US) - 1
    room = last_day - occurred_day
    late_days = np.minimum(rng.integers(1, cfg.max_late_days + 1, size=n), room)
    late &= late_days > 0
    delay = delay + np.where(late, late_days * 86_400 * _US + rng.integers(0, 6 * 3600, size=n) * _US, 0)
    ingested = np.minimum(events["occurred_us"].to_numpy() + delay.astype(np.int64), end_us - 1)
    events["ingested_us"] = ingested
    events["event_id"] = _uuids(rng, n)
    events["occurred_at"] = _iso(events["occurred_us"].to_numpy())
    events["ingested_at"] = _iso(ingested)
    events["is_late"] = late

    batches: dict[str, list[str]] = defaultdict(list)
    arrival_hour = ingested // (3600 * _US)
    records = events[["event_id", "user_id", "item_id", "event_type", "occurred_at", "ingested_at", "value", "device", "session_id", "surface", "position"]].to_dict("records")
    for rec in records:
        if rec["value"] != rec["value"]:  # NaN
            rec["value"] = None
    keys = _batch_keys(arrival_hour, cfg.producer)
    lines = [_event_line(rec) for rec in records]
    for key, line in zip(keys, lines):
        batches[key].append(line)

    # exact re-deliveries of the same event, in a later batch
    dup_idx = np.flatnonzero(rng.random(n) < cfg.duplicate_rate)
    redelivery = np.minimum(ingested[dup_idx] + rng.integers(300, 2 * 86_400, size=len(dup_idx)) * _US, end_us - 1)
    for key, i in zip(_batch_keys(redelivery // (3600 * _US), cfg.producer), dup_idx):
        batches[key].append(lines[i])

    # bad lines, each built from a fresh (untracked) event template
    n_bad = int(round(cfg.bad_event_rate * n))
    bad_kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
    templates = rng.integers(0, n, size=n_bad)
    bad_ids = _uuids(rng, n_bad)
    bad_counts: Counter = Counter()
    for kind, t, eid in zip(bad_kinds, templates, bad_ids):
        rec = dict(records[t], event_id=eid)
        batches[_batch_keys(np.array([ingested[t] // (3600 * _US)]), cfg.producer)[0]].append(_bad_line(kind, rec, cfg, rng))
        bad_counts[kind] += 1

    # shuffle lines inside a batch deterministically: producers do not sort
    for key in batches:
        order = rng.permutation(len(batches[key]))
        batches[key] = [batches[key][i] for i in order]

    summary = {
        "config": {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(cfg).items()},
        "start_day": start.isoformat(),
        "end_day": end.isoformat(),
        "users": len(users),
        "items": len(items),
        "valid_events": n,
        "late_events": int(late.sum()),
        "redelivered_events": len(dup_idx),
        "bad_events": dict(sorted(bad_counts.items())),
        "lines_written": sum(len(v) for v in batches.values()),
        "files_written": len(batches),
        "events_by_type": {k: int(v) for k, v in events["event_type"].value_counts().sort_index().items()},
    }
    events = events.drop(columns=["occurred_us", "ingested_us"])
    return SimulatedWorld(cfg, users, items, events, user_vecs, item_vecs, dict(batches), summary)


def _batch_keys(arrival_hour: np.ndarray, producer: str) -> list[str]:
    cache: dict[int, str] = {}
    out = []
    for h in arrival_hour.tolist():
        key = cache.get(h)
        if key is None:
            arrival = dt.datetime.fromtimestamp(h * 3600, tz=dt.timezone.utc)
            key = cache[h] = event_batch_key(arrival, producer, f"{arrival:%Y%m%d%H}")
        out.append(key)
    return out


def dimension_lines(frame: pd.DataFrame) -> bytes:
    return ("\n".join(json.dumps(r, default=str) for r in frame.to_dict("records")) + "\n").encode()


def write_landing(world: SimulatedWorld, store: LandingStore) -> dict:
    """Write the world's dimension snapshots and event batches into the landing zone."""
    end = world.config.resolved_end_day()
    store.write_bytes(dimension_key(USERS_PREFIX, end), dimension_lines(world.users))
    store.write_bytes(dimension_key(ITEMS_PREFIX, end), dimension_lines(world.items))
    for key in sorted(world.batches):
        store.write_bytes(key, ("\n".join(world.batches[key]) + "\n").encode())
    store.write_bytes("_simulation/summary.json", json.dumps(world.summary, indent=2).encode())
    return world.summary
