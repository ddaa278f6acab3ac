"""Hand-written SVG chart of the benchmark: CPU µs per request added over the plain router.

One panel per payload (each with its own scale: 1 MiB costs orders of magnitude more than a
GET), three bars: B (native aws_lambda filter), C (envoy_lambda module), D (router + buffer
filter). Bar = median over rounds of the per-round difference (config − A, from runs back to
back), whisker = min–max.
"""

from __future__ import annotations

import math
from html import escape

COLORS = {"B": "#8c8c8c", "C": "#1f6fb4", "D": "#c9a227"}
NAMES = {"B": "B: native envoy.filters.http.aws_lambda", "C": "C: envoy_lambda module",
         "D": "D: router + buffer filter"}
LABELS = {"get": "GET, no body", "1k": "POST 1 KiB", "64k": "POST 64 KiB", "1m": "POST 1 MiB",
          "r1m": "GET, 1 MiB answer", "r1m-unwrap": "1 MiB answer, C unwraps"}
BARS = ("B", "C", "D")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def _fmt(v: float) -> str:
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"


def svg(result: dict) -> str:
    payloads = result["settings"]["payloads"]
    summ = result["summary"]
    pw, ph = 220, 300                     # panel size
    left, top, gap = 60, 90, 40
    width = max(1000, left + len(payloads) * (pw + gap) + 20)
    height = top + ph + 130
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
           f'font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="28" font-size="17" font-weight="bold">CPU time added per '
           f'request over the plain Envoy router (µs, Envoy under test)</text>',
           f'<text x="{left}" y="48" fill="#444">median of {result["settings"]["rounds"]} '
           f'rounds, whisker = min–max; per round: config − A from back-to-back runs; '
           f'closed loop, {result["settings"]["connections"]} connections</text>']
    # legend
    lx = left
    for k in BARS:
        out.append(f'<rect x="{lx}" y="60" width="14" height="14" fill="{COLORS[k]}"/>')
        out.append(f'<text x="{lx + 20}" y="72">{escape(NAMES[k])}</text>')
        lx += 280
    for i, p in enumerate(payloads):
        r = summ[p]["ratios"]
        vals = {k: r[f"cpu_us:{k}-A"] for k in BARS if f"cpu_us:{k}-A" in r}
        hi = max([v["max"] for v in vals.values() if v["max"] is not None] + [0.0])
        lo = min([v["min"] for v in vals.values() if v["min"] is not None] + [0.0])
        ymax = _nice_max(hi * 1.1)
        ymin = -_nice_max(-lo * 1.1) if lo < 0 else 0.0
        x0 = left + i * (pw + gap)

        def y(v: float) -> float:
            return top + ph - (v - ymin) / (ymax - ymin) * ph

        out.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" '
                   f'stroke="#ccc"/>')
        for t in range(6):
            v = ymin + (ymax - ymin) * t / 5
            yy = y(v)
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       f'stroke="#e4e4e4"/>')
            tick = f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"
            out.append(f'<text x="{x0 - 4}" y="{yy + 4:.1f}" text-anchor="end" fill="#555" '
                       f'font-size="10">{tick}</text>')
        out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
                   f'stroke="#333"/>')
        bw = 44
        for j, k in enumerate(vals):
            s = vals[k]
            if s["median"] is None:
                continue
            bx = x0 + 25 + j * (bw + 24)
            yt, yb = sorted((y(s["median"]), y(0)))
            out.append(f'<rect x="{bx}" y="{yt:.1f}" width="{bw}" height="{yb - yt:.1f}" '
                       f'fill="{COLORS[k]}"><title>{escape(NAMES[k])}: median '
                       f'{s["median"]:.2f} µs (min {s["min"]:.2f}, max {s["max"]:.2f})'
                       f'</title></rect>')
            cx = bx + bw / 2
            out.append(f'<line x1="{cx}" x2="{cx}" y1="{y(s["min"]):.1f}" '
                       f'y2="{y(s["max"]):.1f}" stroke="black"/>')
            for v in (s["min"], s["max"]):
                out.append(f'<line x1="{cx - 8}" x2="{cx + 8}" y1="{y(v):.1f}" '
                           f'y2="{y(v):.1f}" stroke="black"/>')
            out.append(f'<text x="{cx}" y="{min(yt, y(s["max"])) - 6:.1f}" text-anchor="middle" '
                       f'font-weight="bold">{_fmt(s["median"])}</text>')
            out.append(f'<text x="{cx}" y="{top + ph + 16}" text-anchor="middle">{k}</text>')
        added = r.get("cpu_us:(C-A)/(B-A)", {}).get("median")
        a_cpu = summ[p]["configs"]["A"]["cpu_us"]["median"]
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 36}" text-anchor="middle" '
                   f'font-weight="bold">{escape(LABELS.get(p, p))}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 52}" text-anchor="middle" '
                   f'fill="#444" font-size="11">A itself: {_fmt(a_cpu)} µs/req</text>')
        if added is not None:
            out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 67}" text-anchor="middle" '
                       f'fill="#444" font-size="11">(C−A)/(B−A) = {added:.2f}</text>')
    m = result["machine"]
    note = (f'{m["cpu_model"]} ({"SHA-NI" if m.get("sha_ni") else "no SHA-NI"}), '
            f'{m["cores"]} cores, {m["mem_gib"]} GiB · {m["envoy_version"]} --concurrency 1 '
            f'pinned to core 0 · load generator h2load on core 1 · {result["date"]}')
    out.append(f'<text x="{left}" y="{height - 30}" fill="#444" font-size="11">'
               f'{escape(note)}</text>')
    out.append(f'<text x="{left}" y="{height - 14}" fill="#444" font-size="11">'
               f'{escape("module " + result["module"]["git"] + " · " + result["command"])}'
               f'</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
