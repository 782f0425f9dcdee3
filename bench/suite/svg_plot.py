"""A small SVG line chart, stdlib only: one panel per series, K on an evenly spaced x axis."""
from xml.sax.saxutils import escape

W, H, PAD = 300, 220, 45


def panel(x0, title, unit, ks, values):
    pts = [(k, v) for k, v in zip(ks, values) if v is not None]
    top = max([v for _, v in pts] + [1e-9]) * 1.15
    n = max(1, len(ks) - 1)

    def xy(i, v):
        return (x0 + PAD + i * (W - 2 * PAD + 10) / n, H - PAD - v / top * (H - 2 * PAD))

    parts = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">'
             f'{escape(title)}</text>',
             f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - PAD + 10}" y2="{H - PAD}" '
             'stroke="black"/>',
             f'<line x1="{x0 + PAD}" y1="{PAD}" x2="{x0 + PAD}" y2="{H - PAD}" stroke="black"/>',
             f'<text x="{x0 + 4}" y="{PAD - 8}">{escape(unit)}</text>',
             f'<text x="{x0 + W / 2}" y="{H - 8}" text-anchor="middle">virtual nodes K</text>']
    for frac in (0.5, 1.0):
        _, y = xy(0, top * frac / 1.15)
        parts.append(f'<text x="{x0 + PAD - 4}" y="{y + 4}" text-anchor="end">'
                     f'{top * frac / 1.15:,.0f}</text>')
    for i, k in enumerate(ks):
        x, _ = xy(i, 0)
        parts.append(f'<text x="{x}" y="{H - PAD + 15}" text-anchor="middle">{k}</text>')
    coords = [xy(ks.index(k), v) for k, v in pts]
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f77b4"/>' for x, y in coords]
    return parts


def write(path, title, ks, series):
    """series: [(panel title, unit, [value or None per k])]."""
    width = W * len(series)
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 20}" '
            'font-family="sans-serif" font-size="11">',
            f'<rect width="{width}" height="{H + 20}" fill="white"/>',
            f'<text x="6" y="{H + 14}" fill="#555">{escape(title)}</text>']
    for i, (name, unit, values) in enumerate(series):
        body += panel(i * W, name, unit, ks, values)
    body.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(body) + "\n")
