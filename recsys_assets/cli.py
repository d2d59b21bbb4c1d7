"""``recsys``: the platform's command line.

    recsys simulate [--users N --items M --days D --seed S ...]   write simulated landing files
    recsys import-movielens PATH                                  import an ml-100k folder
    recsys manifest                                               index new landing files
    recsys demo [--users N ...]                                   simulate, then run the pipeline
    recsys backfill start|status|cutover|rollback ID ...          backfills into staging, cutover
    recsys promote [--version V] | recsys rollback                model cutover by hand

Data goes to ``$RECSYS_LANDING_URI`` / ``$RECSYS_LAKEHOUSE_URI`` (default: under
``$RECSYS_HOME``, i.e. ``.recsys/`` in the project).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

from recsys_assets import settings


def _landing_store(uri: str | None = None):
    from recsys_assets.sources.landing import LandingStore

    return LandingStore(uri or settings.landing_uri())


def _refresh_manifest(max_late_days: int = 30) -> dict:
    """Index new landing files so the Definitions see their days as partitions."""
    from recsys_assets.ingestion.manifest import day_span, refresh_manifest
    from resources.lakehouse import LakehouseResource

    lakehouse = LakehouseResource()
    refresh = refresh_manifest(_landing_store(), lakehouse, max_late_days)
    span = day_span(lakehouse)
    return {
        "landing_files": refresh.listed_files,
        "newly_indexed": len(refresh.new_files),
        "first_day": span[0].isoformat() if span else None,
        "last_day": span[1].isoformat() if span else None,
    }


def _sim_config(args: argparse.Namespace):
    from recsys_assets.sources.simulator import SimulationConfig

    return SimulationConfig(
        n_users=args.users,
        n_items=args.items,
        n_days=args.days,
        seed=args.seed,
        end_day=dt.date.fromisoformat(args.end_day) if args.end_day else None,
        sessions_per_user_day=args.sessions_per_user_day,
        bad_event_rate=args.bad_rate,
        duplicate_rate=args.duplicate_rate,
        late_event_rate=args.late_rate,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from recsys_assets.sources.simulator import simulate, write_landing

    started = time.monotonic()
    world = simulate(_sim_config(args))
    summary = write_landing(world, _landing_store(args.landing))
    if not args.landing:
        summary["manifest"] = _refresh_manifest()
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary.pop("config", None)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_import_movielens(args: argparse.Namespace) -> int:
    from recsys_assets.sources.movielens import import_movielens

    summary = import_movielens(args.path, _landing_store(args.landing))
    if not args.landing:
        summary["manifest"] = _refresh_manifest()
    print(json.dumps(summary, indent=2))
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    print(json.dumps(_refresh_manifest(args.max_late_days), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from recsys_assets.demo import run_demo

    if args.fresh:
        home = settings.recsys_home()
        for folder in (settings.landing_uri(), settings.lakehouse_uri(), str(home / "feast")):
            if "://" not in folder and Path(folder).resolve().is_relative_to(home):
                shutil.rmtree(folder, ignore_errors=True)
    return run_demo(_sim_config(args))


def _run(job: str, *, days=None, run_config=None, tags=None):
    from recsys_assets.definitions import defs
    from recsys_assets.runner import default_instance, run_job

    return run_job(defs, job, days=days, run_config=run_config, tags=tags, instance=default_instance(), raise_on_error=False, log_level="WARNING")


def _report(result, what: str) -> int:
    if result.success:
        print(f"{what}: done (run {result.run_id})")
        return 0
    failures = [e.event_specific_data.error.message.strip() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    print(f"{what}: FAILED (run {result.run_id})\n" + "\n".join(failures))
    return 1


def cmd_backfill(args: argparse.Namespace) -> int:
    from recsys_assets.automation.backfills import cutover_history, staged_tables, validate_staged_table
    from resources.lakehouse import STAGING_TAG, LakehouseResource

    lakehouse = LakehouseResource()
    if args.action == "start":
        if not (args.start and args.end):
            print("backfill start needs --from and --to")
            return 2
        days = (dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end))
        config = json.loads(args.config) if args.config else None
        result = _run(args.job, days=days, run_config=config, tags={STAGING_TAG: args.backfill_id})
        code = _report(result, f"backfill {args.backfill_id} of {args.job} {days[0]}..{days[1]} into staging")
        if code == 0:
            print(f"staged: {staged_tables(lakehouse, args.backfill_id)}; live tables unchanged.")
            print(f"next: `recsys backfill cutover {args.backfill_id}` (or let backfill_cutover_sensor do it)")
        return code
    if args.action == "status":
        tables = staged_tables(lakehouse, args.backfill_id)
        print(f"backfill {args.backfill_id}: staged tables {tables or 'none'}")
        for name in tables:
            v = validate_staged_table(lakehouse, args.backfill_id, name)
            print(f"  {name}: {len(v.partitions)} partitions, {v.rows_staged} rows (live {v.rows_live}); "
                  f"{'passes' if v.passed else 'FAILS: ' + '; '.join(v.problems)}")
        for r in cutover_history(lakehouse, args.backfill_id):
            print(f"  {r['decided_at']:%Y-%m-%d %H:%M} {r['action']} {r['table_name']} v{r['live_version_before']} -> v{r['live_version_after']}")
        return 0
    job = "cutover_backfill_job" if args.action == "cutover" else "rollback_backfill_job"
    op = "cut_over_backfill" if args.action == "cutover" else "roll_back_backfill"
    result = _run(job, run_config={"ops": {op: {"config": {"backfill_id": args.backfill_id}}}})
    return _report(result, f"{args.action} of backfill {args.backfill_id}")


def cmd_promote(args: argparse.Namespace) -> int:
    config = {"action": "promote", "force": args.force}
    if args.version:
        config["model_version"] = args.version
    result = _run("promote_recommendations_job", run_config={"ops": {"live_recommendations": {"config": config}}})
    return _report(result, f"promote {args.version or 'newest version'}")


def cmd_rollback(args: argparse.Namespace) -> int:
    from recsys_assets.recommendations.live import live_version
    from resources.lakehouse import LakehouseResource

    code = _report(_run("rollback_recommendations_job"), "rollback of the live recommendations")
    print(f"live version: {live_version(LakehouseResource())}")
    return code


def _add_sim_args(p: argparse.ArgumentParser, users: int = 1000, items: int = 500, days: int = 30) -> None:
    p.add_argument("--users", type=int, default=users, help="number of users (default %(default)s)")
    p.add_argument("--items", type=int, default=items, help="catalog size (default %(default)s)")
    p.add_argument("--days", type=int, default=days, help="days of activity (default %(default)s)")
    p.add_argument("--end-day", default=None, help="last day of activity, YYYY-MM-DD (default: yesterday, UTC)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sessions-per-user-day", type=float, default=0.5)
    p.add_argument("--bad-rate", type=float, default=0.01, help="share of bad lines (default %(default)s)")
    p.add_argument("--duplicate-rate", type=float, default=0.01, help="share of re-delivered events")
    p.add_argument("--late-rate", type=float, default=0.02, help="share of events arriving days late")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a simulated data set into the landing zone")
    _add_sim_args(p)
    p.add_argument("--landing", default=None, help="landing URI (default $RECSYS_LANDING_URI)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("import-movielens", help="import a MovieLens-100K folder into the landing zone")
    p.add_argument("path", help="folder with u.data, u.item, u.user")
    p.add_argument("--landing", default=None, help="landing URI (default $RECSYS_LANDING_URI)")
    p.set_defaults(func=cmd_import_movielens)

    p = sub.add_parser("manifest", help="index new landing files (the partition range follows)")
    p.add_argument("--max-late-days", type=int, default=30)
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("backfill", help="backfill into a staging namespace, then cut over or roll back")
    p.add_argument("action", choices=["start", "status", "cutover", "rollback"])
    p.add_argument("backfill_id", help="name of the staging namespace (the recsys/staging tag)")
    p.add_argument("--job", default="features_backfill_job", help="job to backfill (start); default %(default)s")
    p.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (start)")
    p.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (start)")
    p.add_argument("--config", default=None, help="run config as JSON (start), e.g. a fixed feature parameter")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("promote", help="make a model version's recommendations live")
    p.add_argument("--version", default=None, help="model version (default: the newest trained)")
    p.add_argument("--force", action="store_true", help="promote even if its evaluation gate failed")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="put the previously live model version back online")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("demo", help="simulate a data set and run the whole pipeline on it")
    _add_sim_args(p)
    p.add_argument("--no-fresh", dest="fresh", action="store_false", help="keep existing landing/lakehouse data")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def run() -> None:
    """Console-script entry point: run the command, then leave without native teardown.

    Arrow's and delta-rs's native thread pools can still hold a joinable worker
    when the interpreter finalises, and libstdc++ then aborts a command that had
    already finished its work ("terminate called without an active exception",
    exit -6; apache/arrow#34314, delta-io/delta-rs#2184). Every write the
    commands make is committed (Delta log, closed files) before they return, so
    flushing our streams and exiting with ``os._exit`` loses nothing.
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse errors and --help
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))


if __name__ == "__main__":
    run()
