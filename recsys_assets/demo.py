"""The main job behind ``make demo``: simulate a platform, then run the asset graph on it."""

from __future__ import annotations

import datetime as dt
import time

from recsys_assets import settings


FEATURE_TABLES = ("user_daily_activity", "user_features", "item_features", "item_similarities", "trending_items")


def _print_section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 60 - len(title)))


def ingestion_summary(lakehouse, start: dt.date, end: dt.date) -> dict:
    audit = lakehouse.read_range("ingestion_audit", start, end)
    reasons: dict[str, int] = {}
    for day in audit.column("dead_letter_reasons").to_pylist():
        for reason, count in day or []:
            reasons[reason] = reasons.get(reason, 0) + count
    totals = {c: int(sum(audit.column(c).to_pylist())) for c in ("lines_read", "valid_events", "duplicates_removed", "dead_lettered")}
    return {**totals, "dead_letters_by_reason": dict(sorted(reasons.items())), "partitions_written": audit.num_rows}


def run_demo(cfg) -> int:
    from recsys_assets.cli import _landing_store, _refresh_manifest
    from recsys_assets.sources.simulator import simulate, write_landing

    started = time.monotonic()
    _print_section("simulate")
    world = simulate(cfg)
    sim = write_landing(world, _landing_store())
    manifest = _refresh_manifest()
    print(
        f"{sim['users']} users, {sim['items']} items, {sim['start_day']}..{sim['end_day']}: "
        f"{sim['lines_written']} lines in {sim['files_written']} files -> {settings.landing_uri()}"
    )

    # Import after the landing zone is filled: the partitions start at its first day.
    from recsys_assets.definitions import defs
    from recsys_assets.partitions import daily_partitions
    from recsys_assets.runner import default_instance, run_job
    from resources.lakehouse import LakehouseResource

    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    last = dt.date.fromisoformat(daily_partitions.get_last_partition_key())
    last = min(last, dt.date.fromisoformat(manifest["last_day"]))
    instance = default_instance()

    _print_section(f"ingestion, features, feature store {first}..{last}")
    t = time.monotonic()
    run_job(defs, "daily_job", days=(first, last), instance=instance, log_level="WARNING")
    lakehouse = LakehouseResource()
    summary = ingestion_summary(lakehouse, first, last)
    print(f"events in (lines read): {summary['lines_read']:>9}")
    print(f"valid events:           {summary['valid_events']:>9}")
    print(f"duplicates removed:     {summary['duplicates_removed']:>9}")
    print(f"dead-lettered:          {summary['dead_lettered']:>9}")
    for reason, count in summary["dead_letters_by_reason"].items():
        print(f"  {reason:<22}{count:>9}")
    print(f"partitions written:     {summary['partitions_written']:>9}")
    print("feature tables (rows):")
    for table in FEATURE_TABLES:
        print(f"  {table:<22}{lakehouse.read(table, columns=[lakehouse.schema(table).names[0]]).num_rows:>9}")
    print(f"online store: Feast {settings.recsys_home() / 'feast'}   ({time.monotonic() - t:.1f}s)")

    _print_section("training, retrieval, recommendations, evaluation")
    t = time.monotonic()
    result = run_job(defs, "training_job", instance=instance, log_level="WARNING")
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    model = meta["two_tower_model"]
    print(
        f"model {model['model_version'].value}: {model['epochs'].value} epochs (best {model['best_epoch'].value}), "
        f"{model['train_pairs'].value} training pairs, {model['training_seconds'].value}s"
    )
    index = meta["ann_index"]
    print(f"ann index: {index['kind'].value} over {index['items'].value} items")
    recs = meta["user_recommendations"]
    print(
        f"recommendations: {recs['users'].value} users ({recs['cold_start_users'].value} cold start), "
        f"catalog coverage {recs['catalog_coverage'].value:.0%}"
    )
    evaluation = meta["recommendation_eval"]
    print(f"\noffline evaluation on the last days ({evaluation['test_users'].value} users), k=10:")
    print(evaluation["metrics"].value)
    # what model_cutover_sensor does when the daemon runs: promote a version that passed the gate
    from recsys_assets.automation.sensors import versions_to_promote

    candidate = versions_to_promote(lakehouse)
    if candidate is not None:
        config = {"ops": {"live_recommendations": {"config": {"action": "promote", "model_version": candidate}}}}
        promoted = run_job(defs, "promote_recommendations_job", instance=instance, run_config=config, log_level="WARNING")
        live = {e.asset_key.to_user_string(): e.materialization.metadata for e in promoted.get_asset_materialization_events()}["live_recommendations"]
        print(f"\nlive version: {live['model_version'].value} ({live['reason'].value}); online via Feast view user_recommendations")
    else:
        print(f"\nlive version unchanged: {evaluation['gate'].value}")
    print(f"({time.monotonic() - t:.1f}s)")

    _print_section("done")
    print(f"wall time {time.monotonic() - started:.1f}s; lakehouse at {settings.lakehouse_uri()}")
    print("open the UI with `make ui` to browse assets, runs and metadata")
    return 0
