"""A timeline chart (SVG, generated server-side, readable without JavaScript) of the deadlines
that are met by a completion and can be extended: each row runs from entry into force to the original deadline, then
through each extension granted, with a mark where the obligation was completed.

Which obligations are drawn follows from the rulebook (rules fulfilled by a completion),
not from rule ids written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from engine.core.dates import fmt
from engine.core.evaluate import PartyEvaluation
from engine.core.rulebook import Rulebook


@dataclass(frozen=True)
class Extension:
    meeting: str
    granted: date
    label: str


@dataclass(frozen=True)
class Row:
    iso3: str
    name: str
    article: str
    obligation_id: str
    start: date
    original_due: date
    due: date
    status: str
    extensions: tuple[Extension, ...] = ()
    completed: date | None = None
    notes: tuple[str, ...] = field(default=())


def rows(evaluations: Iterable[PartyEvaluation], rulebook: Rulebook,
         name: Callable[[PartyEvaluation], str] | None = None) -> list[Row]:
    """One row per completion-type obligation of each evaluation, ordered by article then party."""
    out: list[Row] = []
    for evaluation in evaluations:
        for o in evaluation.obligations:
            if rulebook.rule(o.id).status != "completion":
                continue
            facts = evaluation.facts
            decisions = sorted((facts[i] for i in o.inputs if i in facts and str(facts[i].get("k", "")).startswith("decision:")),
                               key=lambda f: f.get("seq", 0))
            extensions = tuple(Extension(meeting=str(f.get("meeting") or ""), granted=date.fromisoformat(f["granted_deadline"]),
                                         label=str(f.get("label", ""))) for f in decisions)
            completed = None
            if o.evidence and o.evidence in facts and facts[o.evidence].get("completed_on"):
                completed = date.fromisoformat(facts[o.evidence]["completed_on"])
            start = evaluation.entry_into_force or o.original_due
            out.append(Row(iso3=evaluation.participant.iso3, name=name(evaluation) if name else evaluation.participant.name,
                           article=o.article, obligation_id=o.id, start=start, original_due=o.original_due, due=o.due,
                           status=o.status, extensions=extensions, completed=completed))
    out.sort(key=lambda r: (r.article, r.name))
    return out


COLORS = {"base": "#4a6fa5", "extension": "#d98c1f", "completed": "#2e8b57", "overdue": "#c0392b", "as_of": "#c0392b",
          "grid": "#dddddd", "text": "#222222"}


def render(timeline: list[Row], as_of: date, *, title: str = "Deadlines and extensions",
           labels: dict[str, str] | None = None, width: int = 980, row_height: int = 22,
           date_format: Callable[[date], str] = fmt) -> str:
    """The SVG document (a string) for the rows, with an ``as of`` line."""
    labels = {"original": "original deadline", "extension": "extension granted", "completed": "completed",
              "overdue": "deadline passed, not completed", "as_of": "as of", "none": "No such deadlines.",
              **(labels or {})}
    left, right, top = 250, 20, 58
    if not timeline:
        height = top + 30
        return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="tl-title" width="{width}" '
                f'height="{height}" viewBox="0 0 {width} {height}" class="timeline"><title id="tl-title">{escape(title)}</title>'
                f'<text x="10" y="{top}" font-size="13">{escape(labels["none"])}</text></svg>')
    dates = [as_of] + [d for r in timeline for d in (r.start, r.original_due, r.due, r.completed) if d] + [
        e.granted for r in timeline for e in r.extensions]
    first_year, last_year = min(dates).year, max(dates).year + 1
    span = date(last_year, 1, 1).toordinal() - date(first_year, 1, 1).toordinal()
    plot = width - left - right

    def x(day: date) -> float:
        return round(left + plot * (day.toordinal() - date(first_year, 1, 1).toordinal()) / span, 1)

    height = top + row_height * len(timeline) + 30
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="tl-title tl-desc" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" class="timeline" font-family="sans-serif">'),
           f'<title id="tl-title">{escape(title)}</title>',
           f'<desc id="tl-desc">{len(timeline)} deadlines as of {escape(date_format(as_of))}</desc>']
    # legend
    legend = [("base", "circle", labels["original"]), ("extension", "circle", labels["extension"]),
              ("completed", "check", labels["completed"]), ("overdue", "cross", labels["overdue"])]
    lx = left
    for key, shape, text in legend:
        out.append(_mark(shape, lx, 14, COLORS[key]))
        out.append(f'<text x="{lx + 10}" y="18" font-size="12" fill="{COLORS["text"]}">{escape(text)}</text>')
        lx += 20 + 7 * len(text)
    # year grid
    step = 1 if (last_year - first_year) <= 16 else 2
    for year in range(first_year, last_year + 1, step):
        gx = x(date(year, 1, 1))
        out.append(f'<line x1="{gx}" y1="{top - 14}" x2="{gx}" y2="{height - 24}" stroke="{COLORS["grid"]}"/>')
        out.append(f'<text x="{gx}" y="{top - 18}" font-size="11" text-anchor="middle" fill="#555">{year}</text>')
        out.append(f'<text x="{gx}" y="{height - 10}" font-size="11" text-anchor="middle" fill="#555">{year}</text>')
    for index, row in enumerate(timeline):
        y = top + index * row_height + row_height / 2
        status = row.status.replace("_", " ")
        summary = (f"{row.name} ({row.iso3}), Art. {row.article}: originally {date_format(row.original_due)}"
                   + "".join(f"; {e.meeting} extended to {date_format(e.granted)}" for e in row.extensions)
                   + (f"; completed {date_format(row.completed)}" if row.completed else "") + f"; {status}")
        out.append(f'<g class="row" data-party="{escape(row.iso3)}" data-article={quoteattr(row.article)}>'
                   f'<title>{escape(summary)}</title>')
        if index % 2:
            out.append(f'<rect x="0" y="{y - row_height / 2}" width="{width}" height="{row_height}" fill="#f6f6f6"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4}" font-size="12" text-anchor="end" fill="{COLORS["text"]}">'
                   f'{escape(_short(row.name))} · {escape(row.article)}</text>')
        out.append(f'<line x1="{x(row.start)}" y1="{y}" x2="{x(row.original_due)}" y2="{y}" stroke="{COLORS["base"]}" stroke-width="4"/>')
        out.append(_mark("circle", x(row.original_due), y, COLORS["base"]))
        previous = row.original_due
        for ext in row.extensions:
            out.append(f'<line x1="{x(previous)}" y1="{y}" x2="{x(ext.granted)}" y2="{y}" stroke="{COLORS["extension"]}" '
                       f'stroke-width="4" stroke-dasharray="6 3"/>')
            out.append(_mark("circle", x(ext.granted), y, COLORS["extension"]))
            previous = ext.granted
        if row.completed:
            out.append(_mark("check", x(row.completed), y, COLORS["completed"]))
        elif row.status == "overdue":
            out.append(_mark("cross", x(row.due), y, COLORS["overdue"]))
        out.append("</g>")
    ax = x(as_of)
    out.append(f'<line x1="{ax}" y1="{top - 10}" x2="{ax}" y2="{height - 24}" stroke="{COLORS["as_of"]}" stroke-dasharray="3 3"/>')
    out.append(f'<text x="{ax + 3}" y="{top - 4}" font-size="11" fill="{COLORS["as_of"]}">'
               f'{escape(labels["as_of"])} {escape(date_format(as_of))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _mark(shape: str, cx: float, cy: float, color: str) -> str:
    if shape == "check":
        return (f'<path d="M{cx - 5},{cy} l4,5 l7,-10" fill="none" stroke="{color}" stroke-width="3" '
                f'class="mark-completed"/>')
    if shape == "cross":
        return (f'<path d="M{cx - 5},{cy - 5} l10,10 M{cx + 5},{cy - 5} l-10,10" stroke="{color}" stroke-width="3" '
                f'class="mark-overdue"/>')
    return f'<circle cx="{cx}" cy="{cy}" r="5" fill="{color}" stroke="white" stroke-width="1"/>'
