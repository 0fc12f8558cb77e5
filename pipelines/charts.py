"""Charts and tables for report.html, written directly as inline SVG and HTML.

A chart is a few dozen rectangles and text elements built as strings: microseconds each, so the
report costs the same for any run (matplotlib took seconds to lay out the demo's 45 histograms).
Text stays text, so CJK labels render with the browser's fonts, and nothing is loaded. Every
string that reaches the page goes through `e` here: a stage that draws its report sections with
these helpers never puts markup from the data on the page.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cleanmix.pipelines.histogram import PER_DECADE, fine_step

KEPT, REMOVED, ACCENT, GRID = "#4c78a8", "#e45756", "#222222", "#e6e6e6"
TEAL, BROWN = "#72b7b2", "#9d755d"
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac")
FONT = 12
"""Text size in SVG units; a full-width chart is drawn about 1:1 with CSS pixels."""
WIDE, SMALL = 1100, 360
"""Widths of a full-width chart and of one of three side by side, in SVG units."""


# ---------------------------------------------------------------------------------------------
# text


def e(value: Any) -> str:
    """Escaped for HTML text and attributes alike."""
    return html.escape(str(value), quote=True)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def n(value: float) -> str:
    """A count with thousands separators; a fraction to 4 significant digits."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"


def nbytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.2f} {unit}"
        value /= 1000
    return f"{value:,.2f} TB"


def share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def text_width(text: str, size: float = FONT) -> float:
    """Rough width of a sans-serif line: wide (CJK) characters are square, others ~0.6 of the size."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else 0.6 * size for c in text)


def _fit(text: str, width: float, size: float = FONT) -> str:
    """`text`, cut with an ellipsis to fit `width` (the full text stays in the tables)."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def table(head: Sequence[Any], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    """An HTML table; columns from `numeric_from` on are right-aligned."""
    def cells(row: Sequence[Any], tag: str) -> str:
        return "".join(f'<{tag}{" class=num" if i >= numeric_from else ""}>{e(v)}</{tag}>' for i, v in enumerate(row))

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><thead><tr>{cells(head, 'th')}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------------------------------------
# SVG


def figure(alt: str, *svgs: str, columns: int = 1) -> str:
    """One or more charts as one figure with an accessible name; several are laid out in `columns`."""
    grid = f' class="cols{columns}"' if columns > 1 else ""
    return f'<figure role="img" aria-label="{e(alt)}"{grid}>{"".join(svgs)}</figure>'


def svg_page(width: float, height: float, body: list[str]) -> str:
    return (f'<svg class="plot" viewBox="0 0 {width:.0f} {height:.0f}" font-size="{FONT}" '
            f'font-family="system-ui, sans-serif">{"".join(body)}</svg>')


def svg_text(x: float, y: float, text: str, anchor: str = "start", size: float | None = None, bold: bool = False,
          rotate: bool = False, halo: bool = False) -> str:
    extra = (f' font-size="{size}"' if size else "") + (' font-weight="bold"' if bold else "")
    if halo:  # readable over bars
        extra += ' stroke="#fff" stroke-width="3" paint-order="stroke"'
    if rotate:
        extra += f' transform="rotate(-90 {x:.1f} {y:.1f})"'
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="central"{extra}>{e(text)}</text>'


def svg_rect(x: float, y: float, w: float, h: float, color: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{color}"/>'


def svg_line(x1: float, y1: float, x2: float, y2: float, color: str = ACCENT, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}"{dash}/>'


def _ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2 or 5 × 10^k) up to `top`."""
    if top <= 0:
        return [0.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def _tick(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 or float(value).is_integer() else f"{value:.3g}"


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for name, color in items:
        out += [svg_rect(x, y - 5, 10, 10, color), svg_text(x + 14, y, name)]
        x += 30 + text_width(name)
    return out


@dataclass(frozen=True)
class Series:
    """One set of bars: a value per label."""

    name: str
    values: Sequence[float]
    color: str = KEPT


def bars(title: str, labels: Sequence[str], series: Sequence[Series], notes: Sequence[str] | None = None, *,
         stacked: bool = False, colors: Sequence[str] | None = None, width: float = WIDE) -> str:
    """Horizontal bars, the first label on top, as an SVG: one series (optionally a colour per label),
    several stacked, or several side by side (then each bar shows its value). `notes` (one per
    label) follow the label's bars; a legend names the series when there are several."""
    many = len(series) > 1
    grouped = many and not stacked
    per_label = 1 if not grouped else len(series)
    bar = 16 if per_label == 1 else 11
    row = bar * per_label + 7
    notes = list(notes or [])
    values = [[float(s.values[i] or 0) for s in series] for i in range(len(labels))]
    ends = [sum(v) if stacked else max(v, default=0.0) for v in values]
    label_w = min(max((text_width(str(label)) for label in labels), default=0) + 12, width * 0.35)
    value_w = max((text_width(_tick(v), 10) for vs in values for v in vs), default=0) + 6 if grouped else 0
    note_w = max((text_width(note, 11) for note in notes), default=0) + 8
    x0, plot_w = label_w, max(width - label_w - max(note_w, value_w) - 8, 80)
    top_y = 30 + (18 if many else 0)
    height = top_y + row * len(labels) + 26
    scale = plot_w / (max(ends, default=0) or 1)
    body = [svg_text(x0 + plot_w / 2, 12, title, "middle", bold=True)]
    if many:
        body += _legend(x0, 32, [(s.name, s.color) for s in series])
    ticks = _ticks(max(ends, default=0) or 1, 5)
    axis_y = top_y + row * len(labels)
    for t in ticks:
        x = x0 + t * scale
        body += [svg_line(x, top_y, x, axis_y, GRID), svg_text(x, axis_y + 12, _tick(t), "middle", size=10)]
    for i, label in enumerate(labels):
        y, left = top_y + i * row + 3, x0
        body.append(svg_text(x0 - 6, y + bar * per_label / 2, _fit(str(label), label_w - 12), "end"))
        for j, (s, v) in enumerate(zip(series, values[i])):
            color = colors[i] if colors and not many else s.color
            if stacked:
                body.append(svg_rect(left, y, v * scale, bar, color))
                left += v * scale
            else:
                body.append(svg_rect(x0, y + j * bar, v * scale, bar - (1 if grouped else 0), color))
                if grouped:
                    body.append(svg_text(x0 + v * scale + 3, y + j * bar + bar / 2, _tick(v), size=10))
        if i < len(notes) and not grouped:
            body.append(svg_text(x0 + ends[i] * scale + 4, y + bar / 2, notes[i], size=11))
    body.append(svg_line(x0, top_y, x0, axis_y))
    return svg_page(width, height, body)


# ---------------------------------------------------------------------------------------------
# distributions from fine-bin tallies (pipelines/histogram.py)


def _edge(key: str) -> float | None:
    try:
        return float(key)
    except ValueError:
        return None


def _slot(edge: float) -> tuple[int, int]:
    """A fine bin as (sign, k), ordered like the values it holds."""
    if edge == 0:
        return (0, 0)
    k = fine_step(edge)
    return (1, k) if edge > 0 else (-1, -k)


def _value_slot(value: float) -> tuple[tuple[int, int], float]:
    """The fine bin of a value and where in it the value lies (0-1, on the log scale)."""
    if value == 0:
        return (0, 0), 0.5
    position = math.log10(abs(value)) * PER_DECADE
    k = math.floor(position + 1e-9)
    return ((1, k), position - k) if value > 0 else ((-1, -k), 1 - (position - k))


def _fill(slots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Every bin between the first and the last of each sign, so the axis has no jumps."""
    out: list[tuple[int, int]] = []
    for sign in (-1, 0, 1):
        ks = [k for s, k in slots if s == sign]
        if ks:
            out += [(sign, k) for k in range(min(ks), max(ks) + 1)]
    return out


def _lower(slot: tuple[int, int]) -> float:
    sign, k = slot
    return 0.0 if sign == 0 else sign * 10 ** (sign * k / PER_DECADE)


def histogram(metric: str, kept: dict[str, int], removed: dict[str, int], thresholds: Sequence[tuple[str, float]],
              width: float = SMALL, height: float = 210) -> str:
    """Kept (blue) and removed (red) documents stacked per fine bin on a log axis, thresholds dashed.
    The axis spans the 0.5-99.5 percentiles, widened to reach nearby thresholds and to at least a
    decade; counts outside fall in the end bins, thresholds outside are named in the title."""
    counts: dict[tuple[int, int], list[int]] = {}
    for column, tally in enumerate((kept, removed)):
        for key, count in tally.items():
            if (edge := _edge(key)) is not None:
                counts.setdefault(_slot(edge), [0, 0])[column] += count
    total = sum(map(sum, counts.values()))
    if not total:
        return svg_page(width, height, [svg_text(width / 2, 9, metric, "middle", size=11, bold=True),
                                    svg_text(width / 2, height / 2, "no values", "middle")])
    marks = [(name, value, *_value_slot(value)) for name, value in thresholds]
    axis = _fill(sorted(set(counts) | {slot for _, _, slot, _ in marks}))
    at = {slot: i for i, slot in enumerate(axis)}
    lo, hi = _percentiles(axis, counts, total)
    reach = max(2 * PER_DECADE, hi - lo)
    near = [(name, slot, fraction) for name, _, slot, fraction in marks if lo - reach <= at[slot] <= hi + reach]
    hidden = [f"{name}={value:g}" for name, value, slot, _ in marks if not lo - reach <= at[slot] <= hi + reach]
    drawn = _widened(axis[min([lo, *(at[slot] for _, slot, _ in near)]):max([hi, *(at[slot] for _, slot, _ in near)]) + 1])
    place = {slot: i for i, slot in enumerate(drawn)}
    stacks = [[0, 0] for _ in drawn]
    for slot, (k, r) in counts.items():
        i = 0 if slot < drawn[0] else len(drawn) - 1 if slot > drawn[-1] else place[slot]
        stacks[i][0] += k
        stacks[i][1] += r
    title = [metric] + ([f"(off-scale: {', '.join(hidden)})"] if hidden else [])
    x0, top, bottom = 46.0, 16.0 + 14 * len(title), height - 22
    slot_w = (width - x0 - 8) / len(drawn)
    body = [svg_text(width / 2, 9 + 14 * i, line, "middle", size=11, bold=i == 0) for i, line in enumerate(title)]
    peak = max(k + r for k, r in stacks) or 1
    scale = (bottom - top) / peak
    for t in _ticks(peak, 3):
        y = bottom - t * scale
        body += [svg_line(x0, y, width - 8, y, GRID), svg_text(x0 - 4, y, _tick(t), "end", size=10)]
    for i, (k, r) in enumerate(stacks):
        x = x0 + i * slot_w
        if k:
            body.append(svg_rect(x, bottom - k * scale, slot_w, k * scale, KEPT))
        if r:
            body.append(svg_rect(x, bottom - (k + r) * scale, slot_w, r * scale, REMOVED))
    body.append(svg_line(x0, bottom, width - 8, bottom))
    body += _x_ticks(drawn, x0, slot_w, bottom, width)
    for name, slot, fraction in near:
        x = x0 + (place[slot] + fraction) * slot_w
        body += [svg_line(x, top, x, bottom, dashed=True), svg_text(x - 5, top + 2, name, "end", size=9, rotate=True, halo=True)]
    return svg_page(width, height, body)


def _percentiles(axis: list[tuple[int, int]], counts: dict[tuple[int, int], list[int]], total: int) -> tuple[int, int]:
    """The bins holding the 0.5th and the 99.5th percentile."""
    cumulative, lo, hi = 0, None, len(axis) - 1
    for i, slot in enumerate(axis):
        cumulative += sum(counts.get(slot, (0, 0)))
        if lo is None and cumulative > 0.005 * total:
            lo = i
        if cumulative >= 0.995 * total:
            hi = i
            break
    return lo or 0, max(hi, lo or 0)


def _widened(slots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The positive bins grown to a decade (half below, half above): a narrow distribution, or one
    value and a threshold, is then drawn as bars on an axis rather than as a few blocks."""
    ks = [k for sign, k in slots if sign == 1]
    missing = PER_DECADE - len(ks)
    if not ks or missing <= 0:
        return slots
    below = missing if len(ks) < len(slots) else missing // 2  # after a 0 bin, grow towards it
    return [s for s in slots if s[0] != 1] + [(1, k) for k in range(min(ks) - below, max(ks) + missing - below + 1)]


def _x_ticks(slots: list[tuple[int, int]], x0: float, slot_w: float, y: float, width: float) -> list[str]:
    """Ticks at 0 and at round values placed on the log axis (10^k, or more when that gives fewer
    than three), none so close to another that their labels touch."""
    index = {slot: i for i, slot in enumerate(slots)}
    ks = [k for sign, k in slots if sign == 1]
    decades = range(math.floor(min(ks) / PER_DECADE), math.ceil((max(ks) + 1) / PER_DECADE) + 1) if ks else range(0)
    marks: list[float] = []
    for factors in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        marks = [f * 10.0 ** d for d in decades for f in factors if _value_slot(f * 10.0 ** d)[0] in index]
        if len(marks) >= 3:
            break
    places = [(_lower(s), index[s] + 0.5) for sign in (0, -1) for s in [s for s in slots if s[0] == sign][:1]]
    places += [(value, index[slot] + fraction) for value in marks for slot, fraction in [_value_slot(value)]]
    out, taken = [], []
    for value, at in places:
        x, label = x0 + at * slot_w, _tick(value)
        half = text_width(label, 10) / 2 + 3
        if all(abs(x - other) >= half + other_half for other, other_half in taken):
            taken.append((x, half))
            out += [svg_line(x, y, x, y + 4), svg_text(min(max(x, half), width - half), y + 12, label, "middle", size=10)]
    return out


def distributions(label: str, tallies: dict[str, dict[str, int]], thresholds: dict[str, list[tuple[str, float]]]) -> str:
    """One histogram per metric that has `<metric>:kept` / `<metric>:removed` tallies of numbers."""
    charts = []
    for metric, limits in thresholds.items():
        kept, removed = tallies.get(f"{metric}:kept") or {}, tallies.get(f"{metric}:removed") or {}
        if (kept or removed) and all(_edge(key) is not None for key in [*kept, *removed]):
            charts.append(histogram(metric, kept, removed, limits))
    if not charts:
        return ""
    note = ("<p class=note>Every document that reached the stage, counted during the run in bins of 1/20 of a power "
            "of ten (log axis). Blue: kept by this stage, red: removed by it (in annotate mode: flagged); dashed: "
            "thresholds. The axis spans the 0.5–99.5 percentiles; values beyond are counted in the end bins.</p>")
    return f"<h3>{e(label)}</h3>" + figure(f"distributions of {label} measurements", *charts, columns=3) + note


# ---------------------------------------------------------------------------------------------
# details of global stages


def details(label: str, values: dict[str, Any], lead: str = "") -> str:
    """Any `details` mapping under the stage's heading, after `lead` (a stage's own chart): numbers
    per key as bars, records as a table, scalars as a table, lists as items."""
    parts = [f"<h3>{e(label)}</h3>", lead]
    for key, value in values.items():
        if isinstance(value, dict) and value:
            parts.append(mapping(label, key, value))
    scalars = [[k, n(v) if is_number(v) else v] for k, v in values.items() if not isinstance(v, (dict, list))]
    if scalars:
        parts.append(table(["detail", "value"], scalars))
    items = [f"<li>{e(key)}: {e(item)}</li>" for key, value in values.items() if isinstance(value, list) for item in value]
    if items:
        parts.append(f"<ul>{''.join(items)}</ul>")
    return "".join(parts)


def mapping(label: str, key: str, value: dict[str, Any]) -> str:
    """Numbers → bars with their shares; records (one level flattened) → a table; else key/value rows."""
    if all(is_number(v) for v in value.values()):
        total = sum(value.values())
        notes = [f"{n(v)} ({share(v, total)})" for v in value.values()]
        chart = bars(f"{label}: {key.replace('_', ' ')}", list(map(str, value)), [Series(key, list(value.values()))], notes)
        return figure(f"{label} {key}", chart)
    if all(isinstance(v, dict) for v in value.values()):
        rows = {k: _flat(v) for k, v in value.items()}
        fields = list(dict.fromkeys(f for row in rows.values() for f in row))
        return table([key, *fields], [[k, *(n(v[f]) if is_number(v.get(f)) else v.get(f, "") for f in fields)]
                                      for k, v in rows.items()])
    return table([key, "value"], [[k, n(v) if is_number(v) else v] for k, v in value.items()])


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat
