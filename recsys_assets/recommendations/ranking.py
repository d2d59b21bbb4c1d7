"""From retrieval candidates to a user's list: filter, diversify, explore.

Pure Python/NumPy over plain inputs, so every rule is testable on its own:

* **filter**: never an item the user already watched or gave a thumbs down, never an
  unavailable item, never a title above a kids profile's maturity limit;
* **diversity**: at most ``max_per_genre`` items of one primary genre in the top
  ``diversity_window`` (the rest move down the list, they are not dropped);
* **exploration**: one slot of the top ``diversity_window`` (``exploration_position``)
  goes to the user's best-scored new title with few impressions, so new titles get
  the exposure that lets the model learn about them;
* **cold start**: users without history get their region's trending list (then the
  global one, then popular titles), filtered and diversified the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from recsys_assets.vocabulary import KIDS_MAX_MATURITY, MATURITY_RANK


@dataclass(frozen=True)
class RankingRules:
    k: int = 50
    max_per_genre: int = 3
    diversity_window: int = 10
    exploration_slots: int = 1
    exploration_position: int = 7  # 0-based position in the list
    kids_max_maturity: str = KIDS_MAX_MATURITY


@dataclass(frozen=True)
class Catalog:
    """What the filters need to know about items, indexed by item id."""

    primary_genre: dict[int, str | None]
    maturity_rank: dict[int, int]
    available: set[int]
    exploration_pool: set[int] = field(default_factory=set)  # new titles with few impressions

    @classmethod
    def build(
        cls,
        item_ids: Sequence[int],
        primary_genres: Sequence[str | None],
        maturity_ratings: Sequence[str],
        available: Sequence[bool],
        exploration: Sequence[bool] | None = None,
    ) -> Catalog:
        ids = [int(i) for i in item_ids]
        nr = MATURITY_RANK["NR"]
        return cls(
            primary_genre=dict(zip(ids, primary_genres)),
            maturity_rank={i: MATURITY_RANK.get(r, nr) for i, r in zip(ids, maturity_ratings)},
            available={i for i, a in zip(ids, available) if a},
            exploration_pool={i for i, e in zip(ids, exploration if exploration is not None else [False] * len(ids)) if e},
        )


@dataclass(frozen=True)
class UserContext:
    user_id: int
    is_kids: bool = False
    watched: frozenset[int] = frozenset()
    thumbs_down: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Recommendation:
    """One slot of a list: ``score`` never increases down the list (the running minimum of
    ``retrieval_score`` in list order, which diversity and exploration may reorder)."""

    item_id: int
    score: float
    retrieval_score: float
    is_exploration: bool = False


def allowed(item_id: int, user: UserContext, catalog: Catalog, rules: RankingRules) -> bool:
    if item_id in user.watched or item_id in user.thumbs_down or item_id not in catalog.available:
        return False
    if user.is_kids and catalog.maturity_rank.get(item_id, MATURITY_RANK["NR"]) > MATURITY_RANK[rules.kids_max_maturity]:
        return False
    return True


def diversify(items: Sequence[tuple[int, float]], catalog: Catalog, rules: RankingRules) -> list[tuple[int, float]]:
    """Fill the top window in score order, deferring items whose primary genre is full.

    Deferred items keep their place in the score order below the window. The cap holds
    whenever the candidates offer enough other genres; it never empties a list.
    """
    head: list[tuple[int, float]] = []
    deferred: list[tuple[int, float]] = []
    per_genre: dict[str, int] = {}
    position = 0
    while position < len(items) and len(head) < rules.diversity_window:
        item, score = items[position]
        position += 1
        genre = catalog.primary_genre.get(item)
        if genre is not None and per_genre.get(genre, 0) >= rules.max_per_genre:
            deferred.append((item, score))
            continue
        if genre is not None:
            per_genre[genre] = per_genre.get(genre, 0) + 1
        head.append((item, score))
    return head + sorted(deferred + list(items[position:]), key=lambda x: -x[1])


def rank_for_user(
    candidate_ids: Iterable[int],
    candidate_scores: Iterable[float],
    user: UserContext,
    catalog: Catalog,
    rules: RankingRules = RankingRules(),
    exploration_scores: dict[int, float] | None = None,
) -> list[Recommendation]:
    """The user's final list from retrieval candidates (any order; best first after this)."""
    seen: set[int] = set()
    kept: list[tuple[int, float]] = []
    for item, score in sorted(zip((int(i) for i in candidate_ids), (float(s) for s in candidate_scores)), key=lambda x: -x[1]):
        if item < 0 or item in seen or not allowed(item, user, catalog, rules):
            continue
        seen.add(item)
        kept.append((item, score))
    ordered = diversify(kept, catalog, rules)[: rules.k]
    slots = _add_exploration([(i, s, False) for i, s in ordered], user, catalog, rules, exploration_scores or {})
    out, floor = [], float("inf")
    for item, retrieval_score, explore in slots:
        floor = min(floor, retrieval_score)
        out.append(Recommendation(item, floor, retrieval_score, explore))
    return out


def _add_exploration(
    slots: list[tuple[int, float, bool]], user: UserContext, catalog: Catalog, rules: RankingRules, exploration_scores: dict[int, float]
) -> list[tuple[int, float, bool]]:
    """Give ``exploration_slots`` top-window slots to the user's best new, rarely shown titles."""
    if rules.exploration_slots <= 0 or not catalog.exploration_pool:
        return slots
    in_head = {item for item, _, _ in slots[: rules.diversity_window]}
    if in_head & catalog.exploration_pool:
        return slots  # a new title already earned a top slot on its own
    # the window keeps its genre cap: inserting pushes the window's last item down
    kept_head = [item for item, _, _ in slots[: rules.diversity_window - rules.exploration_slots]]
    per_genre = Counter(catalog.primary_genre.get(i) for i in kept_head)

    def fits(item: int) -> bool:
        genre = catalog.primary_genre.get(item)
        return genre is None or per_genre[genre] < rules.max_per_genre

    pool = [
        (exploration_scores.get(i, float("-inf")), i)
        for i in catalog.exploration_pool
        if i not in in_head and allowed(i, user, catalog, rules) and fits(i)
    ]
    if not pool:
        return slots
    picks = []
    for score, item in sorted(pool, key=lambda x: (-x[0], x[1])):
        if len(picks) == rules.exploration_slots:
            break
        if fits(item):
            picks.append((score, item))
            per_genre[catalog.primary_genre.get(item)] += 1
    picked = {i for _, i in picks}
    out = [slot for slot in slots if slot[0] not in picked]
    for n, (score, item) in enumerate(picks):
        out.insert(min(rules.exploration_position + n, len(out)), (item, score, True))
    return out[: rules.k]


def cold_start_list(
    user: UserContext,
    region_trending: Sequence[int],
    global_trending: Sequence[int],
    popular: Sequence[int],
    catalog: Catalog,
    rules: RankingRules = RankingRules(),
) -> list[Recommendation]:
    """Trending in the user's region, then globally, then popular; filtered and diversified.

    Scores fall with rank (1, 1/2, 1/3, ...) so lists stay comparable with model scores'
    ordering semantics without pretending to be model scores.
    """
    ordered: list[int] = []
    for source in (region_trending, global_trending, popular):
        ordered += [int(i) for i in source if int(i) not in ordered]
    scores = [1.0 / (n + 1) for n in range(len(ordered))]
    return rank_for_user(ordered, scores, user, catalog, replace(rules, exploration_slots=0))


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
