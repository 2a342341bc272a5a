#!/usr/bin/env python3
"""Draws a learning curve as SVG (no plotting library needed): held-out SC and F0 RMSE of the network alone against
training CPU minutes, one line per design, Griffin-Lim's figure on the same mels dashed.

usage: scripts/plot-curve.py CURVE.tsv OUT.svg
CURVE.tsv columns: design, cpu_minutes, steps, sc, vuv_f1, f0_cents, periodicity (a design named griffin-lim is drawn
as a reference line; "-" marks a figure that was not measured)."""
import math
import sys
from html import escape

def nice_step(top, ticks=5):
    """A tick step of 1, 2 or 5 times a power of ten that covers [0, top] in at most about `ticks` steps."""
    power = 10 ** math.floor(math.log10(top / ticks))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= top / ticks)


rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1], encoding="utf-8")]
header, rows = rows[0], rows[1:]
col = {name: i for i, name in enumerate(header)}
designs = {}
for r in rows:
    designs.setdefault(r[col["design"]], []).append(r)

panels = [("sc", "spectral convergence (lower is better)"), ("f0_cents", "F0 RMSE, cents (lower is better)")]
colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
width, height, margin = 460, 300, 55
x_top = max(float(r[col["cpu_minutes"]]) for r in rows if r[col["design"]] != "griffin-lim")
x_step = nice_step(x_top)
x_max = x_step * -(-x_top // x_step)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height + 40}" font-family="sans-serif" font-size="11">',
       f'<rect width="{2 * width}" height="{height + 40}" fill="white"/>']
for p, (metric, title) in enumerate(panels):
    values = [float(r[col[metric]]) for r in rows if r[col[metric]] not in ("-", "nan")]
    y_step = nice_step(max(values))
    y_max = y_step * -(-max(values) // y_step)
    ox = p * width + margin
    def X(v):
        return ox + (width - margin - 15) * v / x_max
    def Y(v):
        return height - margin + 15 - (height - margin - 10) * v / y_max
    svg.append(f'<text x="{ox}" y="14" font-weight="bold">{escape(title)}</text>')
    svg.append(f'<line x1="{X(0)}" y1="{Y(0)}" x2="{X(x_max)}" y2="{Y(0)}" stroke="black"/>')
    svg.append(f'<line x1="{X(0)}" y1="{Y(0)}" x2="{X(0)}" y2="{Y(y_max)}" stroke="black"/>')
    for k in range(round(x_max / x_step) + 1):
        svg.append(f'<text x="{X(k * x_step)}" y="{Y(0) + 14}" text-anchor="middle">{k * x_step:g}</text>')
    for k in range(round(y_max / y_step) + 1):
        yv = round(k * y_step, 6)
        svg.append(f'<line x1="{X(0)}" y1="{Y(yv)}" x2="{X(x_max)}" y2="{Y(yv)}" stroke="#eee"/>')
        svg.append(f'<text x="{X(0) - 4}" y="{Y(yv) + 4}" text-anchor="end">{yv:g}</text>')
    svg.append(f'<text x="{X(x_max / 2)}" y="{Y(0) + 28}" text-anchor="middle">training CPU minutes (2-core Xeon)</text>')
    c = 0
    for name, rs in designs.items():
        pts = [(float(r[col["cpu_minutes"]]), float(r[col[metric]])) for r in rs if r[col[metric]] not in ("-", "nan")]
        if name == "griffin-lim":
            for _, v in pts:
                svg.append(f'<line x1="{X(0)}" y1="{Y(v)}" x2="{X(x_max)}" y2="{Y(v)}" stroke="gray" stroke-dasharray="5,4"/>')
                svg.append(f'<text x="{X(x_max)}" y="{Y(v) - 4}" text-anchor="end" fill="gray">Griffin-Lim</text>')
            continue
        colour = colours[c % len(colours)]
        c += 1
        pts.sort()
        svg.append('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
            colour, " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)))
        for x, y in pts:
            svg.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{colour}"/>')
        svg.append(f'<text x="{X(x_max * 0.45)}" y="{Y(y_max) + 14 * c}" fill="{colour}">{escape(name)}</text>')
svg.append("</svg>")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write("\n".join(svg) + "\n")
