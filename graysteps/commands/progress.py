"""`graysteps progress --plan FILE`: run a progressive plan's schedule.

Each step is applied to every service of the plan, analysed against real
metrics from Prometheus (gray vs prod), then advanced or, at the first bad
verdict, every service is routed back to prod. Prints one line per step and
its verdicts; `--show` prints the schedule as JSON without touching anything
(Jenkins makes its stages from it); `--step N` runs only step N; a `manual`
pause stops the run until `--approve N`; a killed run resumes where it was.
Each step is counted once Istio serves it (istiod's sync status, as `--wait`
does for route and release) when istiod's debug address is known
(`--istiod` / $GRAYSTEPS_ISTIOD), else `--settle` after the write.
"""

from __future__ import annotations

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._types import http_or_https_url, output_file, positive_int
from graysteps.commands._wait_options import add_istiod_arguments, istio_wait_if_known

NAME = "progress"
HELP = "run a schedule of steps (whitelist, weights, promote), each gated by metrics; roll back on a bad verdict"


def add_arguments(parser) -> None:
    parser.add_argument("--plan", required=True, metavar="FILE", help="progressive plan (YAML): services, steps, analysis, alerts")
    parser.add_argument("--prometheus", metavar="URL", type=http_or_https_url, help="Prometheus for the analysis (default: the plan's analysis.prometheus, else $GRAYSTEPS_PROMETHEUS)")
    parser.add_argument("--dry-run", action="store_true", help="check the plan, the first step (apiserver dry run) and Prometheus; write nothing")
    parser.add_argument("--show", action="store_true", help="print the schedule as JSON (and write it to --report) and stop; no cluster, no Prometheus")
    parser.add_argument("--step", type=positive_int, metavar="N", help="run only step N (1-based), e.g. one Jenkins stage")
    parser.add_argument("--approve", type=positive_int, metavar="N", help="approve step N's manual pause and go on")
    parser.add_argument("--settle", default="2s", metavar="DURATION",
                        help="without istiod (--istiod / $GRAYSTEPS_ISTIOD): wait this long after each change before "
                             "counting (default 2s); with it, each step is counted once Istio serves it")
    parser.add_argument("--no-resume", action="store_true", help="start from step 1 even if an earlier run did not finish")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--db", metavar="URL", help="audit database, also the state a run resumes from (default: $GRAYSTEPS_DB, else the default SQLite file)")
    parser.add_argument("--actor", metavar="NAME", help="who runs the plan, for the audit record (default: $BUILD_USER_ID, else $USER)")
    parser.add_argument("--report", metavar="FILE", type=output_file, help="write the outcome as JSON here")
    add_istiod_arguments(parser)


def _prometheus_url(args, schedule) -> str | None:
    import os

    from graysteps.errors import InvalidInput

    needed = any(step.analysis.enabled for step in schedule.steps)
    url = args.prometheus or next((s.analysis.prometheus for s in schedule.steps if s.analysis.prometheus), None) \
        or os.environ.get("GRAYSTEPS_PROMETHEUS")
    if needed and not url:
        raise InvalidInput("the plan's steps have an analysis: pass --prometheus URL (or analysis.prometheus, or $GRAYSTEPS_PROMETHEUS)", step=NAME)
    return url


def _webhooks(schedule, warn):
    import os

    from graysteps.adapters.alerts import Notifier, Webhook
    from graysteps.errors import InvalidInput

    hooks = []
    for alert in schedule.alerts:
        url = os.environ.get(alert.url_env, "")
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"alert {alert.name}: ${alert.url_env} must hold the webhook's http(s) URL; it is {'empty' if not url else 'not a URL'}", step=NAME)
        hooks.append(Webhook(alert.format, url, alert.name))
    return Notifier(hooks, warn=warn)


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from graysteps.errors import GraystepsError, InvalidInput
    from graysteps.model.catalog import load_catalog
    from graysteps.model.schedule import load_schedule, parse_duration

    catalog = load_catalog(args.catalog)
    schedule = load_schedule(args.plan, catalog)
    if args.show:
        shown = json.dumps({"plan": schedule.name, "services": [s.name for s in schedule.services],
                            "steps": schedule.summary()}, ensure_ascii=False)
        if args.report:  # Jenkins reads the schedule from this file to make one stage per step
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(shown + "\n", encoding="utf-8")
        print(shown)
        return 0
    try:
        settle = parse_duration(args.settle, "--settle", maximum=600.0)
    except ValueError as e:
        raise InvalidInput(str(e), step=NAME) from None
    for flag, value in (("--step", args.step), ("--approve", args.approve)):
        if value is not None and not 1 <= value <= len(schedule.steps):
            raise InvalidInput(f"{flag} {value} is not a step of plan {schedule.name}: use 1-{len(schedule.steps)}", step=NAME)
    if args.step is not None and args.approve is not None:
        raise InvalidInput("--step and --approve do not go together: approve, then run the next step", step=NAME)
    url = _prometheus_url(args, schedule)
    wait = None if args.dry_run else istio_wait_if_known(args, NAME)

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    notifier = _webhooks(schedule, warn)

    from graysteps.adapters.actor import check_actor
    from graysteps.adapters.kube.client import api_client
    from graysteps.adapters.prometheus import PrometheusClient
    from graysteps.steps import progress

    prometheus = PrometheusClient(url, step=NAME) if url else None
    actor = check_actor(args.actor)
    hooks = progress.Hooks(out=lambda line: print(line, flush=True), notifier=None if args.dry_run else notifier,
                           db_url=args.db, record=not args.dry_run)
    result = progress.run_schedule(
        schedule, api_client=api_client(args.kubeconfig), prometheus=prometheus, actor=actor, hooks=hooks,
        dry_run=args.dry_run, approve=None if args.approve is None else args.approve - 1,
        only_step=None if args.step is None else args.step - 1, settle=settle, wait=wait, resume=not args.no_resume,
    )
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.dry_run:
        for step in result.steps:
            print(f"step {step.index + 1}: {step.label}: {step.status}")
            for diff in step.diff:
                print(diff.rstrip("\n"))
        for line in json.dumps(schedule.summary(), ensure_ascii=False, indent=1).splitlines():
            print(line)
    print(f"plan {schedule.name}: {result.result}" + (f" ({result.error})" if result.ok and result.error else ""))
    if not result.ok:
        raise GraystepsError(f"plan {schedule.name} ({schedule.path}) {result.result}: {result.error}", step=NAME, result=result)
    return 0
