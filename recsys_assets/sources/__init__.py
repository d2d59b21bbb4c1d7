"""Data sources that write the landing zone: the simulator and the MovieLens importer.

Dagster-free: usable from scripts, notebooks and the ``recsys`` CLI.
"""
