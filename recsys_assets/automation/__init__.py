"""Automation: schedules, sensors, backfills into staging with cutover."""
