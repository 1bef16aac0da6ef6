"""The `citybrain` command: run, web, push, worker, simulate, check, users, producers, etc."""

from __future__ import annotations

import argparse
import functools
import getpass
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from dashboard.geography import BoundaryError, Geography
from dashboard.heap import freeze_start_up
from dashboard.logs import configure as configure_logs
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.roads import city_geography
from dashboard.routing import RoutingError
from dashboard.settings import Settings, SettingsError
from dashboard.supervisor import Start, Supervisor

log = logging.getLogger("citybrain")


def _settings_and_geography() -> tuple[Settings, Geography]:
    settings = Settings.load()
    configure_logs(settings.log_format)
    geography = city_geography(settings)
    return settings, geography


def _require_redis(settings: Settings) -> str:
    if not settings.redis_url:
        raise SettingsError("REDIS_URL is not set (`citybrain run` starts an embedded Redis)")
    return settings.redis_url


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the ingest worker until SIGTERM (or until drained with --burst)."""
    from dashboard.metrics.worker import WorkerMetrics
    from dashboard.pipeline.worker import Worker

    settings, geography = _settings_and_geography()
    client = connect(_require_redis(settings), settings.redis_cluster)
    metrics = WorkerMetrics(settings, client)
    if settings.worker_metrics:
        try:
            metrics.serve(settings.worker_metrics)
        except OSError as exc:  # e.g. a second worker on this host: it works on, unscraped
            log.error("worker metrics not served on %s: %s", settings.worker_metrics, exc)
    worker = Worker(settings, client, geography, metrics=metrics)
    freeze_start_up()
    log.info("worker %s reading %s as group %s", worker.consumer.name, settings.stream,
             settings.group)
    handled = worker.work(burst=args.burst)
    log.info("worker stopped after %d entries", handled)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write demo events to the stream."""
    from dashboard.demo import flood, run_simulation

    settings, geography = _settings_and_geography()
    client = connect(_require_redis(settings), settings.redis_cluster)
    if args.count:
        written = flood(client, settings.stream, geography, args.count, seed=args.seed or 0,
                        zone=settings.zone)
    else:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        written = run_simulation(settings, client, geography, args.rate or settings.sim_rate,
                                 duration_s=args.duration, seed=args.seed, stop=stop)
    log.info("wrote %d events to %s", written, settings.stream)
    return 0


def _web_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "dashboard.app:wsgi()",
        "--config", "python:dashboard.gunicorn_conf",
        "--bind", f"{settings.host}:{settings.port}",
        "--workers", str(settings.web_workers), "--threads", "4",
        "--worker-class", "gthread", "--timeout", "60", "--log-level", "info",
    ]


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the screen and the API with gunicorn."""
    settings, _ = _settings_and_geography()
    _require_redis(settings)
    os.execv(sys.executable, _web_command(settings))
    return 0  # pragma: no cover - execv does not return


def cmd_push(args: argparse.Namespace) -> int:
    """Serve the push stream (server-sent events) beside the web, until SIGTERM."""
    from dashboard.push.app import serve

    settings, _ = _settings_and_geography()
    _require_redis(settings)
    serve(settings)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check settings, boundaries, the road network and routing rules, then exit."""
    from dashboard.routing import load_routing

    settings, geography = _settings_and_geography()
    if settings.routing_rules:
        routing = load_routing(settings.routing_rules, geography, settings.departments)
        print(f"routing rules ok; {sum(map(len, routing.by_category.values()))} rules")
    if settings.risk_tree:
        tree = settings.risk_tree
        print(f"risk tree ok; {len(tree.categories)} categories, "
              f"{len(tree.indicators)} indicators")
    roads = geography.roads
    lines = f"; {len(roads.classes)} road segments ({roads.source})" if roads else ""
    print(f"settings ok; {len(geography.areas)} areas, city {geography.root_id}{lines}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Everything on one machine: Redis (embedded if needed), worker, demo feed, web, push.

    A supervisor restarts a child that dies (the embedded Redis too), with backoff, logged
    and counted in /healthz.
    """
    settings, _ = _settings_and_geography()
    embedded = None
    url = settings.redis_url
    starters: dict[str, Start] = {}
    if not url:
        embedded = EmbeddedRedis(settings.data_dir)
        url = embedded.start()
        print(f"embedded Redis ({embedded.binary}) at {url}", flush=True)
        starters["redis"] = embedded.ensure_running
    env = {**os.environ, "REDIS_URL": url}
    if not settings.routing_rules and not settings.boundaries and settings.city == "shanghai":
        from dashboard.routing import DEMO_RULES

        env["CITYBRAIN_ROUTING_RULES"] = str(DEMO_RULES)  # the demo city's 分类转办 rules
    if (settings.risk_tree is None and not os.environ.get("CITYBRAIN_RISK_MODEL")
            and not settings.boundaries and settings.city == "shanghai"):
        from dashboard.risk_tree import DEMO_TREE

        env["CITYBRAIN_RISK_TREE"] = str(DEMO_TREE)  # the demo city's 风险指标体系
        env.setdefault("CITYBRAIN_RISK_ORDERS", "orange")  # 未诉先办 on for the demo
    if not settings.boundaries and settings.city == "shanghai":
        # 多源合并 on for the demo: its feed reports the same place again and again. (Its
        # hotspots stay off: the feed draws every report from 256 points a district, so
        # every busy point would be a hotspot; a city sets its own thresholds.)
        env.setdefault("CITYBRAIN_MERGE_METRES", "150")
        env.setdefault("CITYBRAIN_MERGE_MINUTES", "30")
    me = [sys.executable, "-m", "dashboard.cli"]
    commands = {"worker": [*me, "worker"], "web": _web_command(settings)}
    if settings.update_mode == "push":
        commands["push"] = [*me, "push"]
    if not args.no_feed:
        commands["feed"] = [*me, "simulate", "--rate", str(args.rate or settings.sim_rate)]
    for name, command in commands.items():
        starters[name] = functools.partial(subprocess.Popen, command, env=env)
    supervisor = Supervisor(starters, connect(url, settings.redis_cluster),
                            settings.state_prefix + "supervisor", stop_last=("redis",))
    signal.signal(signal.SIGTERM, lambda signum, frame: supervisor.stop())
    signal.signal(signal.SIGINT, lambda signum, frame: supervisor.stop())
    try:
        supervisor.start()
        host = "localhost" if settings.host in ("0.0.0.0", "127.0.0.1") else settings.host
        print(f"\n  City Operations Cockpit: http://{host}:{settings.port}/\n", flush=True)
        supervisor.run()  # restarts a child that dies, until SIGTERM or SIGINT
    finally:
        supervisor.stop_children()
        if embedded:
            embedded.stop()
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Manage accounts: add, remove, list, passwd, set (role/scope), tour, token, revoke."""
    from dashboard.auth.users import UserError, UserStore

    settings, geography = _settings_and_geography()
    store = UserStore(connect(_require_redis(settings), settings.redis_cluster),
                      settings.state_prefix, geography)

    def password() -> str:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\n")
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise UserError("the two passwords differ")
        return first

    try:
        if args.action == "add":
            role = args.role or "city"
            user = store.add(args.name, role, None if role == "wall" else password(),
                             args.scope)
            print(f"added {user.name} ({user.role}, scope {user.scope})")
            if user.role == "wall":
                print(f"wall screen URL: /?token={store.issue_token(user.name)}")
        elif args.action == "remove":
            store.remove(args.name)
            print(f"removed {args.name}")
        elif args.action == "passwd":
            store.passwd(args.name, password())
            print(f"password of {args.name} changed; their sessions ended")
        elif args.action == "set":
            current = store.get(args.name)
            if current is None:
                raise UserError(f"no user {args.name!r}")
            user = store.change(args.name, args.role or current.role, args.scope)
            print(f"{user.name} is now {user.role}, scope {user.scope}; their sessions ended")
        elif args.action == "tour":
            areas = [a.strip() for a in (args.areas or "").split(",") if a.strip()]
            store.set_tour(args.name, areas, args.every)
            print(f"{args.name} tours {', '.join(areas)}" + (
                f" every {args.every:g} s" if args.every else "") if areas
                  else f"{args.name} has no tour of its own now")
        elif args.action == "token":
            print(f"wall screen URL: /?token={store.issue_token(args.name)}")
        elif args.action == "revoke":
            print(f"revoked {store.revoke_token(args.name)} token(s) of {args.name}")
        else:
            for user in store.all():
                print(f"{user.name}\t{user.role}\t{user.scope}")
    except UserError as exc:
        print(f"citybrain users: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_producers(args: argparse.Namespace) -> int:
    """Manage the HTTP intake's producer tokens: add (shows the token once), list, revoke."""
    from dashboard.producers import ProducerError, ProducerStore

    settings, geography = _settings_and_geography()
    store = ProducerStore(connect(_require_redis(settings), settings.redis_cluster),
                          settings.state_prefix, geography)
    try:
        if args.action == "add":
            kinds = tuple(k.strip() for k in (args.kinds or "").split(",") if k.strip())
            token = store.add(args.name, kinds, args.area)
            print(f"added producer {args.name}; its token (shown only now):\n{token}")
        elif args.action == "revoke":
            store.revoke(args.name)
            print(f"revoked producer {args.name}")
        else:
            for producer in store.all():
                print(f"{producer.name}\t{','.join(producer.kinds) or 'all kinds'}\t"
                      f"{producer.area or 'whole city'}")
    except ProducerError as exc:
        print(f"citybrain producers: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_boundaries(args: argparse.Namespace) -> int:
    """Import a city's boundary file into the hierarchy the cockpit loads, or check it."""
    from pathlib import Path

    from dashboard.boundaries import ImportOptions, import_file, read_areas

    settings, base = _settings_and_geography()
    options = ImportOptions(args.id_field, args.name_field, args.level, args.name_en_field,
                            args.parent_field, args.layer, args.coord, args.simplify)
    if args.action == "check":
        _, report = read_areas(Path(args.file), options, base)
        print("\n".join(report.lines()))
        return 1 if report.problems else 0
    out = args.out or settings.boundaries
    if not out:
        raise SettingsError("give --out FILE (and point CITYBRAIN_BOUNDARIES at it), or set "
                            "CITYBRAIN_BOUNDARIES to the file to update")
    report, loaded = import_file(Path(args.file), options, base, Path(out))
    print("\n".join(report.lines()))
    print(f"wrote {out}: {len(loaded.areas)} areas (set CITYBRAIN_BOUNDARIES={out})")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Check the audit files' hash chains (verify) or write them as CSV (export)."""
    from datetime import date
    from pathlib import Path

    import redis

    from dashboard.audit.commands import export_csv, redis_heads, today_in, verify
    from dashboard.audit.reader import AuditReader, query_from

    settings, geography = _settings_and_geography()
    folder = Path(settings.audit_path)
    if args.action == "verify":
        heads = {}
        if not settings.redis_url:
            log.warning("REDIS_URL is not set: the ends of files are checked by their seals "
                        "only")
        else:
            try:
                heads = redis_heads(connect(settings.redis_url, settings.redis_cluster),
                                    settings.state_prefix)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unreachable (%s): the ends of files are checked by their "
                            "seals only", exc)
        try:
            since = date.fromisoformat(args.since) if args.since else None
        except ValueError as exc:
            raise SettingsError(f"--from: {exc}") from exc
        return verify(folder, since, today_in(settings), settings.audit_keep_days, heads,
                      sys.stdout)
    try:
        query = query_from({"from": args.since, "to": args.until, "user": args.user,
                            "action": args.act, "area": args.area}, settings.zone)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    reader = AuditReader(folder, settings.zone, geography)
    if args.out in (None, "-"):
        count = export_csv(reader, query, settings, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            count = export_csv(reader, query, settings, out)
    log.info("exported %d audit entries", count)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="citybrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.add_argument("--rate", type=float, help="demo events per second")
    run.add_argument("--no-feed", action="store_true", help="start without the demo feed")
    run.set_defaults(func=cmd_run)
    sub.add_parser("web", help=cmd_web.__doc__).set_defaults(func=cmd_web)
    sub.add_parser("push", help=cmd_push.__doc__).set_defaults(func=cmd_push)
    worker = sub.add_parser("worker", help=cmd_worker.__doc__)
    worker.add_argument("--burst", action="store_true", help="drain the stream, then exit")
    worker.set_defaults(func=cmd_worker)
    simulate = sub.add_parser("simulate", help=cmd_simulate.__doc__)
    simulate.add_argument("--rate", type=float, help="events per second (CITYBRAIN_SIM_RATE)")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.add_argument("--count", type=int, help="write this many events as fast as possible")
    simulate.add_argument("--seed", type=int, help="random seed")
    simulate.set_defaults(func=cmd_simulate)
    sub.add_parser("check", help=cmd_check.__doc__).set_defaults(func=cmd_check)
    users = sub.add_parser("users", help=cmd_users.__doc__)
    users.add_argument("action",
                       choices=["add", "remove", "list", "passwd", "set", "tour", "token",
                                "revoke"])
    users.add_argument("name", nargs="?", default="")
    users.add_argument("--role", choices=["city", "district", "street", "wall"],
                       help="add: the role (default city); set: the new role")
    users.add_argument("--scope", help="district code or street id (district/street users)")
    users.add_argument("--areas", help="tour: the account's own tour (巡屏), comma-separated "
                       "area ids ('' clears it)")
    users.add_argument("--every", type=float, help="tour: seconds on each area")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input (for scripts)")
    users.set_defaults(func=cmd_users)
    producers = sub.add_parser("producers", help=cmd_producers.__doc__)
    producers.add_argument("action", choices=["add", "list", "revoke"])
    producers.add_argument("name", nargs="?", default="")
    producers.add_argument("--kinds", help="add: comma-separated kinds it may send (default all)")
    producers.add_argument("--area", help="add: the area its events must lie in (default all)")
    producers.set_defaults(func=cmd_producers)
    boundaries = sub.add_parser("boundaries", help=cmd_boundaries.__doc__)
    boundaries.add_argument("action", choices=["import", "check"])
    boundaries.add_argument("file", help="Shapefile, GeoPackage, GeoJSON, KML ...")
    boundaries.add_argument("--layer", help="the layer of a multi-layer file (GeoPackage)")
    boundaries.add_argument("--id-field", required=True, help="field of the area ids")
    boundaries.add_argument("--name-field", required=True, help="field of the names")
    boundaries.add_argument("--name-en-field", help="field of the English names")
    boundaries.add_argument("--level", required=True, help="the level of every area in it")
    parent = boundaries.add_mutually_exclusive_group(required=True)
    parent.add_argument("--parent-field", help="field of the parent ids")
    parent.add_argument("--parent-by", choices=["containment"],
                        help="find parents by containment in the current hierarchy")
    boundaries.add_argument("--coord", choices=["wgs84", "gcj02", "bd09"], default="wgs84",
                            help="the datum of the file's longitude/latitude")
    boundaries.add_argument("--simplify", type=float, default=0.0, metavar="METRES",
                            help="import: simplify, keeping shared edges (0: not at all)")
    boundaries.add_argument("--out", help="import: file to write (default "
                            "CITYBRAIN_BOUNDARIES)")
    boundaries.set_defaults(func=cmd_boundaries)
    audit = sub.add_parser("audit", help=cmd_audit.__doc__)
    audit.add_argument("action", choices=["verify", "export"])
    audit.add_argument("--from", dest="since", help="first day (YYYY-MM-DD; export also "
                       "takes ISO-8601 times)")
    audit.add_argument("--to", dest="until", help="last day or moment (export)")
    audit.add_argument("--user", help="only this user's entries (export)")
    audit.add_argument("--action", dest="act", help="only this action (export)")
    audit.add_argument("--area", help="only entries inside this area (export)")
    audit.add_argument("--out", help="CSV file to write (export; default: standard output)")
    audit.set_defaults(func=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `citybrain` command."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SettingsError, BoundaryError, RoutingError) as exc:
        print(f"citybrain: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
