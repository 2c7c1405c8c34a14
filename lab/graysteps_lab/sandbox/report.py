"""The demo's summary: an HTML page with a PNG chart of where traffic went at each step.

    html_path, png_path = write_report(result, out_dir)

`result` is a graysteps_lab.demo.DemoResult. The chart needs matplotlib (the
`demo` extra: pip install -e '.[demo]'); without it the page is written with
the tables only and says how to get the chart.
"""

from __future__ import annotations

import html
import json
import textwrap
from pathlib import Path
from typing import Any

CHART_NAME = "traffic.png"
ERRORS_CHART_NAME = "progressive.png"
KIND_COLOURS = ("#2e7d32", "#66bb6a", "#ef6c00", "#607d8b")


def write_report(result: Any, out_dir: Path) -> tuple[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    chart, chart_note = "", ""
    try:
        chart = str(draw_chart(result.steps, out_dir / CHART_NAME))
    except ImportError:
        chart_note = "matplotlib is not installed, so there is no chart: pip install -e '.[demo]'"
    progressive = getattr(result, "progressive", None) or {}
    if progressive.get("timeline") and not chart_note:
        progressive["chart"] = str(draw_error_rates(progressive, out_dir / ERRORS_CHART_NAME))
    page = out_dir / "index.html"
    page.write_text(render_html(result, chart_note), encoding="utf-8")
    return str(page), chart


def draw_chart(steps: list, path: Path) -> Path:
    """Grouped bars: for each step, the share of each kind of request served by gray, per hop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [s for s in steps if s.traffic]
    kinds = [t.kind for t in measured[0].traffic] if measured else []
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    width = 0.8 / max(len(kinds), 1)
    for hop, (ax, service) in enumerate(zip(axes, ("test-a", "test-b"))):
        for k, kind in enumerate(kinds):
            xs = [i + (k - (len(kinds) - 1) / 2) * width for i in range(len(measured))]
            ys = [next(t for t in s.traffic if t.kind == kind).share(hop) for s in measured]
            bars = ax.bar(xs, ys, width, label=kind, color=KIND_COLOURS[k % len(KIND_COLOURS)])
            ax.bar_label(bars, labels=[f"{y:.0f}" for y in ys], fontsize=7, padding=1)
        ax.set_ylim(0, 118)
        ax.set_ylabel(f"% served by {service} gray")
        ax.set_title(f"hop {hop + 1}: {service}" + (" (called by test-a, cookie forwarded)" if hop else ""),
                     fontsize=10, loc="left", pad=28 if hop == 0 else 6)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(range(len(measured)))
    axes[-1].set_xticklabels([textwrap.fill(f"{i + 1}. {s.title}", 22) for i, s in enumerate(measured)], fontsize=8)
    axes[0].legend(fontsize=8, ncols=len(kinds) or 1, loc="lower center", bbox_to_anchor=(0.5, 1.06))
    fig.suptitle("graysteps demo: share of each kind of request served by gray after each step (the rest: prod)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_error_rates(progressive: dict, path: Path) -> Path:
    """Gray's and prod's error rates per second (lines) and the share of answers from gray (shaded), with the
    schedule's start and the moment every request was back on prod marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = progressive["timeline"]
    xs = [t for t, _ in rows]

    def rate(cells: dict, profile: str) -> float | None:
        answers, errors = cells.get(profile, (0, 0))
        return 100.0 * errors / answers if answers else None

    fig, ax = plt.subplots(figsize=(11, 4.5))
    share_ax = ax.twinx()
    share = [100.0 * cells.get("gray", (0, 0))[0] / max(sum(v[0] for v in cells.values()), 1) for _, cells in rows]
    share_ax.fill_between(xs, share, step="post", alpha=0.12, color="#ef6c00", label="share of answers from gray")
    share_ax.set_ylim(0, 100)
    share_ax.set_ylabel("% of answers from gray (shaded)")
    measured = progressive.get("error_rates") or {}
    for profile, colour in (("gray", "#c62828"), ("prod", "#2e7d32")):
        if measured.get(profile):  # what the analysis saw: every attempt, from Prometheus
            points = measured[profile]
            ax.plot([t for t, _ in points], [v for _, v in points], drawstyle="steps-post", color=colour, marker=".",
                    label=f"{profile} error rate since the start, per attempt (Prometheus)")
        ax.plot(xs, [rate(cells, profile) for _, cells in rows], drawstyle="steps-post", color=colour, alpha=0.45,
                linestyle=":", label=f"{profile} errors seen by callers (after Envoy's retries)")
    if progressive.get("started_s") is not None:
        ax.axvline(progressive["started_s"], color="#607d8b", linestyle=":", label="graysteps progress starts")
    if progressive.get("back_on_prod_s") is not None:
        ax.axvline(progressive["back_on_prod_s"], color="#000", linestyle="--", label="rolled back: all traffic on prod")
    ax.set_xlabel("seconds")
    ax.set_ylabel("error rate, %")
    ax.set_ylim(0, 30)
    ax.grid(alpha=0.3)
    ax.set_zorder(share_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("act 2: a bad version released on a schedule and rolled back by the analysis "
                 f"({progressive.get('rate')} requests/s)", fontsize=10, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_html(result: Any, chart_note: str = "") -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>graysteps demo</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "pre{background:#f5f5f5;padding:.6em;overflow-x:auto;font-size:12px}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        ".ok{color:#2e7d32}.bad{color:#c62828}",
        "</style></head><body>",
        "<h1>graysteps demo: a gray release in the local sandbox</h1>",
        f"<p class='{'ok' if result.ok else 'bad'}'><b>{'every step passed' if result.ok else 'a step FAILED'}</b>"
        f" in {result.seconds:.0f}s. Sandbox <code>{e(result.sandbox)}</code>, ingress <code>{e(result.ingress)}</code>,"
        f" cookie service <code>{e(result.cookie_service)}</code>.</p>",
        "<p>Routing changes are written to the real kube-apiserver; istiod watches the VirtualServices and "
        "pushes them to the gateway Envoy and the sidecars over xDS, without a restart. After each step, requests are sent as "
        "each kind of user and every hop (test-a, then test-b) names the profile that served it.</p>",
        f"<p>Each routing change was served by every Envoy <b>{result.median_watch_ms} ms</b> (median) after its watch event; "
        f"Envoy's pid was {' then '.join(str(p) for p in result.envoy_pids)}"
        f" ({'never restarted' if len(set(result.envoy_pids)) == 1 else 'RESTARTED'}).</p>",
    ]
    if chart_note:
        parts.append(f"<p class='bad'>{e(chart_note)}</p>")
    else:
        parts.append(f"<p><img src='{CHART_NAME}' alt='traffic per step' style='max-width:100%'></p>")
    for i, step in enumerate(result.steps, 1):
        parts.append(f"<h2>{i}. {e(step.title)}</h2><p>{e(step.why)}</p>")
        for c in step.commands:
            status = "ok" if c.exit_code == 0 else "bad"
            parts.append(f"<pre><span class='{status}'>$ {e(c.shown)}</span>  <i>({c.seconds:.1f}s, exit "
                         f"{c.exit_code})</i>\n{e(c.output)}</pre>")
        if step.live_ms is not None:
            parts.append(f"<p>{e(live_note(step))}</p>")
        if step.traffic:
            parts.append("<table><tr><th>request from</th><th>test-a gray</th><th>test-b gray</th>"
                         "<th>paths (count)</th></tr>")
            for t in step.traffic:
                paths = ", ".join(f"{p}: {n}" for p, n in sorted(t.paths.items(), key=lambda x: -x[1]))
                parts.append(f"<tr><td>{e(t.kind)}</td><td>{t.share(0):.1f}%</td><td>{t.share(1):.1f}%</td>"
                             f"<td><code>{e(paths)}</code></td></tr>")
            parts.append("</table>")
        if step.verify_passed is not None:
            parts.append(f"<p class='{'ok' if step.verify_passed else 'bad'}'>graysteps verify: "
                         f"{'passed' if step.verify_passed else 'FAILED'}</p>")
    progressive = getattr(result, "progressive", None) or {}
    if progressive.get("chart"):
        back = progressive.get("back_on_prod_s")
        started = progressive.get("started_s")
        took = f"{back - started:.1f}s after the schedule started" if back is not None and started is not None else "n/a"
        parts.append(f"<h2>Act 2 in a chart</h2><p>Every request was back on prod {took}.</p>"
                     f"<p><img src='{ERRORS_CHART_NAME}' alt='error rates over time' style='max-width:100%'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def live_note(step: Any) -> str:
    """How fast the step's VirtualService change reached Envoy."""
    when = ("already live when the command returned" if step.live_ms < 1
            else f"live {step.live_ms:.0f} ms after the command returned")
    return (f"{when}: watch event -> every Envoy serving the new routes took {step.watch_ms} ms (istiod's push, "
            "no Envoy restart)")
