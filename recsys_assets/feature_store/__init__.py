"""Feast integration: the offline store over Delta Lake snapshots, feature repo helpers."""
