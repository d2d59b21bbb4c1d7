"""Jobs: the asset jobs schedules and sensors launch, and the op jobs of backfill cutover."""

import dagster as dg
from pydantic import Field

from recsys_assets.automation.backfills import CutoverRejected, cut_over, roll_back
from recsys_assets.partitions import daily_partitions
from resources.lakehouse import LakehouseResource

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=daily_partitions,
    description="Dimension snapshots, then validated events, dead letters and the audit for the selected days.",
)
features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.groups("features") | dg.AssetSelection.assets("online_features"),
    partitions_def=daily_partitions,
    description="Feature tables for the selected days, then the online store.",
)
features_backfill_job = dg.define_asset_job(
    "features_backfill_job",
    selection=dg.AssetSelection.groups("features"),
    partitions_def=daily_partitions,
    description="Feature tables only (no online store): the job to backfill into a staging namespace (tag recsys/staging=<id>).",
)
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("ingestion", "features", "feature_store"),
    partitions_def=daily_partitions,
    description="A day end to end: ingestion, features, registry and online store.",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("training", "retrieval", "recommendations", "evaluation") - dg.AssetSelection.assets("live_recommendations"),
    description="Train a model version, index it, write its lists in shadow and evaluate it against baselines and live.",
)
promote_recommendations_job = dg.define_asset_job(
    "promote_recommendations_job",
    selection=dg.AssetSelection.assets("live_recommendations"),
    description="Make a model version's lists live (the model cutover sensor launches it for versions that pass the gate).",
)
rollback_recommendations_job = dg.define_asset_job(
    "rollback_recommendations_job",
    selection=dg.AssetSelection.assets("live_recommendations"),
    config={"ops": {"live_recommendations": {"config": {"action": "rollback"}}}},
    description="Put the previously live model version's lists back online (recorded as a decision).",
)


class BackfillConfig(dg.Config):
    backfill_id: str = Field(description="The staging namespace: the value of the recsys/staging tag of the backfill's runs")


@dg.op(description="Validate a staged backfill and, if every table passes, swap its partitions into the live tables.")
def cut_over_backfill(context: dg.OpExecutionContext, config: BackfillConfig, lakehouse: LakehouseResource) -> dg.Output:
    try:
        validations = cut_over(lakehouse, config.backfill_id, context.run.run_id)
    except CutoverRejected as rejected:
        for v in rejected.validations:
            context.log.error(f"{v.table}: {'; '.join(v.problems) or 'passed'}")
        raise dg.Failure(
            description=f"backfill {config.backfill_id} rejected, live untouched: {rejected}",
            metadata={"validation": dg.MetadataValue.json([v.as_dict() for v in rejected.validations])},
        ) from None
    summary = [v.as_dict() for v in validations]
    context.log.info(f"cut over {config.backfill_id}: {[v.table for v in validations]}")
    return dg.Output(summary, metadata={"tables": dg.MetadataValue.json(summary)})


@dg.op(description="Restore the partitions a backfill cutover replaced to their pre-cutover rows.")
def roll_back_backfill(context: dg.OpExecutionContext, config: BackfillConfig, lakehouse: LakehouseResource) -> dg.Output:
    rows = roll_back(lakehouse, config.backfill_id, context.run.run_id)
    restored = [{"table": r["table_name"], "partitions": r["partitions"], "version": r["live_version_after"]} for r in rows]
    return dg.Output(restored, metadata={"restored": dg.MetadataValue.json(restored)})


@dg.job(description="Validate a staged backfill and cut it over into live (launched by backfill_cutover_sensor).")
def cutover_backfill_job():
    cut_over_backfill()


@dg.job(description="Roll back a backfill cutover: the replaced partitions get their previous rows again.")
def rollback_backfill_job():
    roll_back_backfill()


ALL_JOBS = [
    ingestion_job,
    features_job,
    features_backfill_job,
    daily_job,
    training_job,
    promote_recommendations_job,
    rollback_recommendations_job,
    cutover_backfill_job,
    rollback_backfill_job,
]
