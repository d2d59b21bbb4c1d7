"""Filtering, diversity, exploration and cold start of recommendation lists."""

from __future__ import annotations

import numpy as np

from recsys_assets.recommendations.ranking import Catalog, RankingRules, UserContext, cold_start_list, rank_for_user, top_indices

GENRES = ["Comedy"] * 10 + ["Drama"] * 10 + ["Horror"] * 5 + ["Children"] * 5  # items 0..29
RATINGS = ["PG-13"] * 10 + ["PG"] * 10 + ["R"] * 5 + ["G"] * 5


def catalog(exploration=(), unavailable=()) -> Catalog:
    ids = list(range(30))
    return Catalog.build(ids, GENRES, RATINGS, [i not in unavailable for i in ids], [i in exploration for i in ids])


def scores_desc(n=30):
    return list(range(n)), [1.0 - i / 100 for i in range(n)]  # item 0 best


def test_filters_watched_thumbs_down_unavailable_and_over_age():
    ids, scores = scores_desc()
    user = UserContext(1, is_kids=True, watched=frozenset({20}), thumbs_down=frozenset({21}))
    recs = rank_for_user(ids, scores, user, catalog(unavailable={22}), RankingRules(k=50))
    got = {r.item_id for r in recs}
    assert not got & {20, 21, 22}
    assert all(RATINGS[i] in ("G", "PG") for i in got)  # kids: nothing above PG
    assert got == set(range(10, 30)) - {20, 21, 22} - set(range(20, 25))


def test_adult_sees_everything_available_and_unseen():
    ids, scores = scores_desc()
    recs = rank_for_user(ids, scores, UserContext(1), catalog(), RankingRules(k=50))
    assert len(recs) == 30 and len({r.item_id for r in recs}) == 30


def test_diversity_cap_in_top_window_and_scores_non_increasing():
    ids, scores = scores_desc()
    rules = RankingRules(k=20, max_per_genre=3, diversity_window=10, exploration_slots=0)
    recs = rank_for_user(ids, scores, UserContext(1), catalog(), rules)
    top = [GENRES[r.item_id] for r in recs[:10]]
    assert max(top.count(g) for g in set(top)) <= 3
    assert [r.item_id for r in recs[:3]] == [0, 1, 2]  # best comedies first, then other genres move up
    assert recs[3].item_id == 10
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:]))  # the list score never increases
    assert recs[3].score == min(r.retrieval_score for r in recs[:4])
    assert sorted((r.retrieval_score for r in recs), reverse=True) != [r.retrieval_score for r in recs]  # diversity reordered


def test_exploration_slot_gets_a_new_title():
    ids, scores = scores_desc(20)  # candidates never include items 25..29
    rules = RankingRules(k=20, exploration_position=7)
    cat = catalog(exploration={27, 28})
    recs = rank_for_user(ids, scores, UserContext(1), cat, rules, exploration_scores={27: 0.1, 28: 0.3})
    explore = [(n, r.item_id) for n, r in enumerate(recs) if r.is_exploration]
    assert explore == [(7, 28)]  # the user's best-scored new title, in the reserved slot
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:]))
    assert len(recs) == 20


def test_no_exploration_when_a_new_title_is_already_on_top_or_not_allowed():
    ids, scores = scores_desc(20)
    recs = rank_for_user(ids, scores, UserContext(1), catalog(exploration={1}), RankingRules(), exploration_scores={})
    assert not any(r.is_exploration for r in recs)
    kid = UserContext(2, is_kids=True)
    recs = rank_for_user(ids, scores, kid, catalog(exploration={23}), RankingRules(), exploration_scores={23: 9.0})
    assert 23 not in {r.item_id for r in recs}  # an R-rated new title never explores into a kids list


def test_cold_start_uses_regional_then_global_trending_filtered():
    cat = catalog()
    kid = UserContext(5, is_kids=True)
    recs = cold_start_list(kid, region_trending=[22, 25, 26], global_trending=[0, 27, 25], popular=[10, 11], catalog=cat, rules=RankingRules(k=5))
    assert [r.item_id for r in recs] == [25, 26, 27, 10, 11]
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:]))


def test_top_indices():
    s = np.array([[0.1, 0.9, 0.5, 0.7], [1.0, 0.0, 0.2, 0.3]])
    assert top_indices(s, 2).tolist() == [[1, 3], [0, 3]]


def test_exploration_respects_the_genre_cap():
    ids, scores = scores_desc(30)
    cat = catalog(exploration={5, 27})  # item 5 is a comedy (genre full), 27 a children title
    rules = RankingRules(k=20, max_per_genre=3)
    recs = rank_for_user(ids, scores, UserContext(1), cat, rules, exploration_scores={5: 0.99, 27: 0.1})
    explore = [r.item_id for r in recs if r.is_exploration]
    assert explore == [27]
    top = [GENRES[r.item_id] for r in recs[:10]]
    assert max(top.count(g) for g in set(top)) <= 3
