"""The HTML report: one self-contained page (inline CSS and SVG we generate here; no script,
no CDN, no fonts to fetch) that works offline. Pure: a report dict in, a string out; imports
the standard library only.

Plots share one time axis (seconds since the workload started) and mark every fault:
throughput (items done per second), item latency (p50, p99), probe write latency (p50,
max), and a lane per fault kind.
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["dead_letters_line", "render_html", "retries_line"]

W, H = 860, 220
ML, MR, MT, MB = 110, 20, 16, 34
QUANTILES = ("p50", "p90", "p99", "max")
COLORS = {
    "kill": "#d62728",
    "stop": "#ff7f0e",
    "exited": "#ff7f0e",
    "restart": "#2ca02c",
    "server-stop": "#9467bd",
    "server-start": "#9467bd",
    "drop-connections": "#8c564b",
    "latency": "#e377c2",
    "lose-write": "#000000",
}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _nice(v: float) -> float:
    """A round number at or above `v` for an axis maximum."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return float(m * exp)
    return float(10 * exp)


def _x(t: float, x_max: float) -> float:
    return ML + (W - ML - MR) * (t / x_max if x_max else 0)


def _y(v: float, y_max: float) -> float:
    return MT + (H - MT - MB) * (1 - (v / y_max if y_max else 0))


def _axes(x_max: float, y_max: float, y_label: str) -> list[str]:
    out = [f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" class="plot"/>']
    for i in range(5):
        v = y_max * i / 4
        y = _y(v, y_max)
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        label = f"{v:.0f}" if y_max >= 10 else f"{v:.2g}"
        out.append(
            f'<text x="{ML - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{label}</text>'
        )
    step = _nice(x_max / 8)
    t = 0.0
    while t <= x_max + 1e-9:
        x = _x(t, x_max)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - MB}" y2="{H - MB + 4}" class="axis"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{H - MB + 16}" class="tick" text-anchor="middle">{t:g}s</text>'
        )
        t += step
    out.append(
        f'<text x="14" y="{(H - MB + MT) / 2:.0f}" class="label" '
        f'transform="rotate(-90 14 {(H - MB + MT) / 2:.0f})" text-anchor="middle">'
        f"{_e(y_label)}</text>"
    )
    return out


def _fault_marks(faults: list[dict[str, Any]], x_max: float) -> list[str]:
    out = []
    for f in faults:
        x = _x(f["t"], x_max)
        color = COLORS.get(f["kind"], "#555")
        if f.get("duration"):
            x2 = _x(min(x_max, f["t"] + f["duration"]), x_max)
            out.append(
                f'<rect x="{x:.1f}" y="{MT}" width="{max(1.0, x2 - x):.1f}" height="{H - MT - MB}" '
                f'fill="{color}" opacity="0.10"/>'
            )
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{H - MB}" stroke="{color}" '
            f'stroke-dasharray="3 3"><title>{_e(f["t"])}s {_e(f["kind"])} {_e(f["target"])} '
            f"{_e(f['detail'])}</title></line>"
        )
    return out


def line_chart(
    series: list[tuple[str, str, list[tuple[float, float]]]],
    x_max: float,
    y_label: str,
    faults: list[dict[str, Any]],
) -> str:
    """An SVG line chart of (name, colour, points) series with the faults marked."""
    y_max = _nice(max([v for _, _, pts in series for _, v in pts] + [0.0]) * 1.05)
    parts = _axes(x_max, y_max, y_label) + _fault_marks(faults, x_max)
    for i, (name, color, pts) in enumerate(series):
        if pts:
            d = " ".join(f"{_x(t, x_max):.1f},{_y(v, y_max):.1f}" for t, v in pts)
            parts.append(
                f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.8"/>'
            )
        lx = ML + 10 + i * 150
        parts.append(f'<rect x="{lx}" y="{MT + 6}" width="12" height="4" fill="{color}"/>')
        parts.append(f'<text x="{lx + 16}" y="{MT + 11}" class="tick">{_e(name)}</text>')
    body = "\n".join(parts)
    return f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">{body}</svg>'


def fault_lanes(faults: list[dict[str, Any]], x_max: float) -> str:
    """One lane per fault kind, a marker (and a bar for a duration) per event."""
    kinds = list(dict.fromkeys(f["kind"] for f in faults))
    lane = 22
    height = MT + lane * max(1, len(kinds)) + MB
    box = lane * max(1, len(kinds))
    parts = [f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{box}" class="plot"/>']
    step = _nice(x_max / 8)
    t = 0.0
    while t <= x_max + 1e-9:
        x = _x(t, x_max)
        parts.append(
            f'<text x="{x:.1f}" y="{height - MB + 16}" class="tick" text-anchor="middle">'
            f"{t:g}s</text>"
        )
        t += step
    for i, kind in enumerate(kinds):
        y = MT + lane * i + lane / 2
        parts.append(
            f'<text x="{ML - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_e(kind)}</text>'
        )
    for f in faults:
        i = kinds.index(f["kind"])
        y = MT + lane * i + lane / 2
        x = _x(f["t"], x_max)
        color = COLORS.get(f["kind"], "#555")
        if f.get("duration"):
            x2 = _x(min(x_max, f["t"] + f["duration"]), x_max)
            parts.append(
                f'<rect x="{x:.1f}" y="{y - 4:.1f}" width="{max(2.0, x2 - x):.1f}" height="8" '
                f'fill="{color}" opacity="0.4"/>'
            )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}"><title>{_e(f["t"])}s '
            f"{_e(f['kind'])} {_e(f['target'])} {_e(f['detail'])}</title></circle>"
        )
    body = "\n".join(parts)
    return f'<svg viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img">{body}</svg>'


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:940px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.pass{color:#1a7f37;font-weight:bold} .fail{color:#cf222e;font-weight:bold}
table{border-collapse:collapse;margin:4px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} .v{color:#cf222e;font-size:12px} .muted{color:#666}
svg .plot{fill:#fbfbfb;stroke:#ccc} svg .grid{stroke:#eee} svg .axis{stroke:#999}
svg .tick{font-size:11px;fill:#555} svg .label{font-size:12px;fill:#333}
"""


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _per_role(by_role: dict[str, int]) -> str:
    return f" ({', '.join(f'{r} {n}' for r, n in by_role.items())})" if by_role else ""


def retries_line(stats: dict[str, Any]) -> str:
    """'retries 12 (triage 5, resolver 7) on 11 activations, 10 items done after retries'."""
    r = stats["retries"]
    return (
        f"retries {r['total']}{_per_role(r['by_role'])} on {r['activations']} activations, "
        f"{r['items']} items done after retries"
    )


def dead_letters_line(stats: dict[str, Any]) -> str:
    """'dead letters 2 (resolver 2), 2 items failed after all retries'."""
    d = stats["dead_letters"]
    return (
        f"dead letters {d['total']}{_per_role(d['by_role'])}, {d['items']} items failed "
        "after all retries"
    )


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a report dict (as `build_report` makes it)."""
    st = report["stats"]
    buckets = report["timeline"]["buckets"]
    faults = report["faults"]
    x_max = _nice(
        max(
            [report["duration_s"]]
            + [b["t"] + b["width"] for b in buckets]
            + [f["t"] + f.get("duration", 0) for f in faults]
        )
    )
    mid = [(b["t"] + b["width"] / 2, b) for b in buckets]
    thr = line_chart(
        [("items/s", "#1f77b4", [(t, b["items_per_s"]) for t, b in mid])],
        x_max,
        "items done / s",
        faults,
    )
    lat = line_chart(
        [
            ("p50", "#2ca02c", [(t, b["latency_p50_ms"]) for t, b in mid if b["done"]]),
            ("p99", "#d62728", [(t, b["latency_p99_ms"]) for t, b in mid if b["done"]]),
        ],
        x_max, "item latency, ms", faults,
    )  # fmt: skip
    wr = line_chart(
        [
            ("p50", "#17becf", [(t, b["write_p50_ms"]) for t, b in mid]),
            ("max", "#9467bd", [(t, b["write_max_ms"]) for t, b in mid]),
        ],
        x_max, "probe write, ms", faults,
    )  # fmt: skip
    verdict = '<span class="pass">PASS</span>' if report["ok"] else '<span class="fail">FAIL</span>'
    inv_rows = []
    for inv in report["invariants"]:
        mark = '<span class="pass">✓</span>' if inv["ok"] else '<span class="fail">✗</span>'
        vs = "".join(f'<div class="v">{_e(v)}</div>' for v in inv["violations"])
        inv_rows.append([mark, _e(inv["name"]), _e(inv["summary"]) + vs])
    lat_ms = st["latency_ms"]
    esc = st["escalations"]
    stats_rows = [
        ["items done", f"{st['done']} of {st['acknowledged']} acknowledged"],
        ["throughput", f"{st['items_per_s']} items/s"],
        ["item latency", " · ".join(f"{q} {lat_ms[q]:.0f} ms" for q in QUANTILES)],
        ["activations", f"{st['activations']['total']}: " + ", ".join(
            f"{_e(r)} {_e(c)}" for r, c in st["activations"]["by_role"].items())],
        ["conflicts / redeliveries", f"{st['conflicts']} / {st['redeliveries']}"],
        ["retries", _e(retries_line(st))],
        ["dead letters", _e(dead_letters_line(st))],
        ["escalations", f"{esc['escalated']} by low confidence, {esc['to_human']} to a human"],
        ["acknowledged writes checked", str(st["acknowledged_writes"])],
    ]  # fmt: skip
    fault_rows = [
        [f"{f['t']:.2f}s", _e(f["kind"]), _e(f["target"]), _e(f["detail"])] for f in faults
    ]
    proc_rows = [
        [_e(p["name"]), _e(p["kind"]), str(p["starts"]), _e(p["stop_code"]),
         _e("; ".join(p["crashes"]) or "-")]
        for p in report["processes"]
    ]  # fmt: skip
    boards = ", ".join(
        f"{_e(k)}" + (f" ({_e(v)})" if k != v else "") for k, v in report["boards"].items()
    )
    sections = [
        f"<h1>{_e(report['scenario'])} {verdict}</h1>",
        f'<div class="muted">{_e(report["description"])}</div>',
        f'<div class="muted">run {_e(report["run_id"])} · started {_e(report["started"])} · '
        f'{report["duration_s"]:.1f}s · boards {boards} · server {_e(report["server"])} · '
        f'seed {_e(report["seed"])}</div>',
        "<h2>Invariants</h2>", _table(inv_rows, ["", "invariant", "result"]),
        "<h2>Numbers</h2>", _table([[_e(a), b] for a, b in stats_rows], ["", ""]),
        "<h2>Throughput</h2>", thr,
        "<h2>Item latency (creation to final state)</h2>", lat,
        "<h2>Probe write latency (acknowledged writes during the run)</h2>", wr,
        "<h2>Fault timeline</h2>", fault_lanes(faults, x_max) if faults else "<p>No faults.</p>",
        _table(fault_rows, ["time", "fault", "target", "detail"]) if faults else "",
        "<h2>Processes</h2>",
        _table(proc_rows, ["process", "kind", "starts", "final exit", "crashes"]),
    ]  # fmt: skip
    if report.get("warnings"):
        sections += ["<h2>Warnings</h2>"] + [f"<p>{_e(w)}</p>" for w in report["warnings"]]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(report['scenario'])} scenario report</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
