"""The platform's shared vocabulary: event types, genres, maturity ratings, regions, age bands.

Sources, ingestion, features and recommendation filters all speak these words, so
they live in one place.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = ("play", "complete", "rating", "thumbs_up", "thumbs_down", "impression", "click")

# Engagement events that say "the user chose this item" (positives for training).
POSITIVE_EVENT_TYPES: tuple[str, ...] = ("play", "complete", "thumbs_up", "click")

GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
GENRE_INDEX = {g: i for i, g in enumerate(GENRES)}

# Ordered from all audiences to adults only; "NR" (not rated) counts as adult.
MATURITY_RATINGS: tuple[str, ...] = ("G", "PG", "PG-13", "R", "NC-17", "NR")
MATURITY_RANK = {r: i for i, r in enumerate(MATURITY_RATINGS)}
KIDS_MAX_MATURITY = "PG"

COUNTRY_REGION: dict[str, str] = {
    "US": "NA",
    "CA": "NA",
    "MX": "LATAM",
    "BR": "LATAM",
    "AR": "LATAM",
    "GB": "EMEA",
    "DE": "EMEA",
    "FR": "EMEA",
    "ES": "EMEA",
    "IN": "APAC",
    "JP": "APAC",
    "KR": "APAC",
    "AU": "APAC",
}
REGIONS: tuple[str, ...] = ("NA", "LATAM", "EMEA", "APAC")

AGE_BANDS: tuple[str, ...] = ("kids", "13-17", "18-24", "25-34", "35-44", "45-54", "55+", "unknown")


def age_band(age: int | None) -> str:
    """The age band of an age in years ("unknown" when absent)."""
    if age is None or age < 0:
        return "unknown"
    if age < 13:
        return "kids"
    for upper, band in ((17, "13-17"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54")):
        if age <= upper:
            return band
    return "55+"


def allowed_for_kids(maturity_rating: str) -> bool:
    return MATURITY_RANK.get(maturity_rating, MATURITY_RANK["NR"]) <= MATURITY_RANK[KIDS_MAX_MATURITY]
