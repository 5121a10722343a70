"""Server-rendered SVG charts (no script): storage used per user against the quota."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from messenger.server.admin_service import Usage


def usage_chart(rows: Sequence[Usage], title: str, width: int = 640) -> Markup:
    """One horizontal bar per user: the share of its quota in use (red past 90 %)."""
    bar_h, gap, label_w = 22, 8, 220
    height = max(1, len(rows)) * (bar_h + gap) + 10
    track = width - label_w - 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for i, row in enumerate(rows):
        y = 5 + i * (bar_h + gap)
        share = min(1.0, row.used / row.quota) if row.quota > 0 else 1.0
        colour = "#b00020" if share > 0.9 else "#0b5cad"
        label = escape(row.user.email)
        parts += [
            f'<text x="0" y="{y + 16}" font-size="13" fill="#1a1a1a">{label}</text>',
            f'<rect x="{label_w}" y="{y}" width="{track}" height="{bar_h}" fill="#e6e6e6"/>',
            f'<rect x="{label_w}" y="{y}" width="{round(track * share)}" height="{bar_h}" '
            f'fill="{colour}"/>',
            f'<text x="{label_w + track + 6}" y="{y + 16}" font-size="13" fill="#1a1a1a">'
            f"{round(share * 100)} %</text>",
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
