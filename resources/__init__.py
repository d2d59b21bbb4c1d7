"""Dagster resources per deployment: lakehouse storage, landing zone, Spark, Feast.

Import from the submodules (``resources.lakehouse``, ``resources.spark``, ...).
"""
