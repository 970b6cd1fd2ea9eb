"""The recommendation as one self-contained HTML page, with its PNG plots beside it (no CDN, no
script): the latency-vs-rate curve with the SLO, the knee and any measured load tests, the
candidates' cost against their p95, and the cost table."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from loadtests.plan.recommend import Plan, knee

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #e8f6e8; font-weight: 600; } tr.fail { color: #888; }
.answer { border-left: 5px solid #2a7; padding: 0.5em 1em; background: #f3fbf5; font-size: 17px; }
img { max-width: 100%; }
"""


def _measured(folders: Sequence[Path]) -> list[dict[str, Any]]:
    found = []
    for folder in folders:
        summary = folder / "summary.json"
        if summary.is_file():
            found.append(json.loads(summary.read_text()))
    return found


def plot_latency(plan: Plan, measured: Sequence[dict[str, Any]], path: Path) -> None:
    """Predicted p50/p95 e2e against the arrival rate, with the SLO, knee, capacity, and runs."""
    fig, ax = plt.subplots(figsize=(9, 5.2), dpi=110)
    curve = plan.curve
    rates = [c["rate_per_s"] for c in curve]
    for key, style in (("p50", "-o"), ("p95", "-s")):
        ax.plot(rates, [c["e2e_s"][key] for c in curve], style, label=f"predicted {key} end-to-end", ms=4)
    for q, metric, limit in plan.slo.limits:
        if metric == "e2e":
            ax.axhline(limit, color="crimson", ls="--", lw=1.2, label=f"SLO {q} e2e ≤ {limit:g} s")
    bend = knee(curve)
    if bend is not None:
        ax.axvline(bend, color="darkorange", ls=":", lw=1.5, label=f"knee ≈ {bend:.3g} jobs/s")
    if curve:
        cap = curve[0]["max_rate_per_s"]
        ax.axvline(cap, color="black", ls="-.", lw=1, label=f"capacity {cap:.3g} jobs/s")
    ax.axvline(plan.rate, color="seagreen", lw=2, alpha=0.5, label=f"planned rate {plan.rate:g} jobs/s")
    if plan.best is not None and plan.curve_label == plan.best.label():
        e2e = plan.best.prediction["e2e_s"]
        ax.plot(
            [plan.rate] * 2,
            [e2e["p50"], e2e["p95"]],
            "*",
            color="seagreen",
            ms=14,
            label="the plan's p50, p95",
        )
    for i, run in enumerate(measured):
        marker = "x" if run.get("saturated") else "D"
        for key, colour in (("p50", "tab:blue"), ("p95", "tab:orange")):
            value = run["e2e_s"][key]
            if value is not None:
                label = f"measured {key}" + (" (x: saturated)" if key == "p95" else "") if i == 0 else None
                ax.plot(run["rate_per_s"], value, marker, color=colour, ms=8, mfc="none", mew=2, label=label)
    ax.set_xlabel("arrival rate (jobs/s)")
    ax.set_ylabel("end-to-end seconds (submit → SUCCEEDED)")
    if plan.curve_label:
        ax.set_title(f"{plan.curve_label}: latency against load")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_costs(plan: Plan, path: Path) -> None:
    """Every candidate's cost per day against its predicted p95 end-to-end."""
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for c in plan.candidates:
        p95 = c.prediction["e2e_s"]["p95"]
        if p95 is None or c.prediction["saturated"]:
            continue
        ax.scatter(
            c.cost_per_day, p95, color="seagreen" if c.meets else "grey", s=90 if c is plan.best else 30
        )
        ax.annotate(c.label(), (c.cost_per_day, p95), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for q, metric, limit in plan.slo.limits:
        if metric == "e2e" and q == "p95":
            ax.axhline(limit, color="crimson", ls="--", lw=1.2, label=f"SLO p95 e2e ≤ {limit:g} s")
    ax.set_xlabel("cost per day")
    ax.set_ylabel("predicted p95 end-to-end (s)")
    ax.set_title("candidates (green: meets the SLO; saturated ones are left out)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _table(plan: Plan) -> str:
    head = (
        "<tr><th>configuration</th><th>GPUs</th><th>utilisation</th><th>e2e p50</th><th>e2e p95</th>"
        "<th>wait p95</th><th>GPU-h/day</th><th>cost/day</th><th>cost/video</th><th>SLO</th></tr>"
    )
    rows = []
    for c in sorted(plan.candidates, key=lambda c: (c.cost_per_day, c.label())):
        p = c.prediction
        css = "best" if c is plan.best else ("" if c.meets else "fail")
        verdict = "meets" if c.meets else html.escape(c.failure or "")
        rows.append(
            f'<tr class="{css}"><td>{html.escape(c.label())}</td><td class="n">{c.fleet.gpus}</td>'
            f'<td class="n">{_num(p["utilisation"], "{:.0%}")}</td>'
            f'<td class="n">{_num(p["e2e_s"]["p50"])}</td>'
            f'<td class="n">{_num(p["e2e_s"]["p95"])}</td><td class="n">{_num(p["wait_s"]["p95"])}</td>'
            f'<td class="n">{c.gpu_hours_per_day:g}</td><td class="n">{c.cost_per_day:.2f}</td>'
            f'<td class="n">{c.cost_per_video(plan.rate):.4f}</td><td>{verdict}</td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _answer(plan: Plan) -> str:
    if plan.best is None:
        return '<p class="answer">No candidate the calibration covers meets the SLO at this rate.</p>'
    b, p = plan.best, plan.best.prediction
    text = (
        f"<b>{html.escape(b.label())}</b>: {b.fleet.gpus} GPU(s) at {p['utilisation']:.0%} utilisation; "
        f"end-to-end p50 {p['e2e_s']['p50']:.1f} s, p95 {p['e2e_s']['p95']:.1f} s; "
        f"{b.gpu_hours_per_day:g} GPU-hours and {b.cost_per_day:.2f} per day, "
        f"{b.cost_per_video(plan.rate):.4f} per video."
    )
    if plan.next_cheaper is not None:
        text += (
            f"<br>The next cheaper, {html.escape(plan.next_cheaper.label())}, fails: "
            f"{html.escape(plan.next_cheaper.failure or '')}."
        )
    return f'<p class="answer">{text}</p>'


def write_report(plan: Plan, path: Path, *, measured: Sequence[Path] = ()) -> None:
    """`path` (HTML) and `<stem>-latency.png`, `<stem>-cost.png` beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    latency_png = path.with_name(f"{path.stem}-latency.png")
    cost_png = path.with_name(f"{path.stem}-cost.png")
    runs = _measured(measured)
    plot_latency(plan, runs, latency_png)
    plot_costs(plan, cost_png)
    needs = plan.facade_needs()
    replicas = (
        needs["replicas"] if needs["replicas"] is not None else "unknown (no `paddock bench facade` result)"
    )
    mix = ", ".join(f"{html.escape(j.name)} × {j.weight:g}" for j in plan.profile.jobs)
    bend = knee(plan.curve)
    at_knee = f" (about {bend:.3g} jobs/s)" if bend else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>paddock capacity plan</title><style>{CSS}</style></head><body>
<h1>Capacity plan: {plan.rate:g} jobs/s, SLO {html.escape(str(plan.slo))}</h1>
<p>Job mix: {mix}. GPU-hour: {plan.gpu_hour_cost:g}. {len(plan.candidates)} candidates simulated in
{plan.seconds:.1f} s.</p>
{_answer(plan)}
<h2>Latency against load</h2>
<p>The predicted end-to-end time of the cheapest configuration as the arrival rate grows, from a
simulation of paddock's scheduling. The curve stays flat while slots and batches absorb the load,
then bends at the knee{at_knee} and climbs towards capacity. Diamonds are measured
load tests; an × marks a run the load test flagged as saturated.</p>
<img src="{latency_png.name}" alt="latency against arrival rate">
<h2>Candidates</h2>
<img src="{cost_png.name}" alt="cost against predicted p95">
{_table(plan)}
<h2>Facade</h2>
<p>Clients polling every {plan.poll_interval_s:g} s bring about {needs["polls_per_s"]:.1f} queries/s and
{needs["submits_per_s"]:.3g} submits/s. Facade replicas needed (each at most half busy): {replicas}.</p>
{"".join(f"<p>Skipped {html.escape(s)}</p>" for s in plan.skipped)}
</body></html>
"""
    path.write_text(page)
