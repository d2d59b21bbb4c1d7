"""Schedules: yesterday's partition every night, and a daily retraining."""

import dagster as dg

from recsys_assets.jobs import daily_job, training_job

# A daily partitioned job's schedule targets the partition of the day that just ended.
daily_pipeline_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    name="daily_pipeline_schedule",
    hour_of_day=1,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:00 UTC: ingestion, features, registry and online store for the previous day's partition.",
)

retrain_schedule = dg.ScheduleDefinition(
    name="retrain_schedule",
    job=training_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "At 04:00 UTC (after the daily partition): train a model version, index it, write its lists in shadow and "
        "evaluate it; model_cutover_sensor promotes it if it passes the gate."
    ),
)

ALL_SCHEDULES = [daily_pipeline_schedule, retrain_schedule]
