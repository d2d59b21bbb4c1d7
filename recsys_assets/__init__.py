"""Recommender data platform: the Dagster asset graph and the Dagster-free pieces it wires.

Importing this package does not import Dagster; the Definitions live in
``recsys_assets.definitions``.
"""

import warnings

# Backfill policies, partition mappings that tolerate missing history and partitioned check
# specs are Dagster beta/preview APIs this platform relies on deliberately; keep logs readable.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
