"""One consolidated note per State per mailing: the planned letters grouped by State, each item worded from what was actually sent before.

A pure function of the planned items (notifiers.planner), the items already sent (the delivery
log) and the date the note bears; it reads no clock and no database.

The wording of an item, in words:

* ``forthcoming``: its due date is on or after the note's date (whatever stage planned it: a
  courtesy notice planned for a day now past, but sent after the due date, is a reminder).
* ``further``: the due date has passed and an earlier note already reminded the State of this
  same obligation (same period, same due date) after that date: the note cites it.
* ``reminder``: the due date has passed and no earlier note reminded the State of it; a State
  is never told of "earlier correspondence" that the log does not hold.

A note "follows" the latest earlier note to the State that raised any of its obligations, and
says so with that note's reference and date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from notifiers.planner import PlannedLetter

WORDINGS = ("forthcoming", "reminder", "further")


@dataclass(frozen=True)
class SentItem:
    """An item of a note (or a single letter) already sent: which obligation, about which due date, in which note."""

    party: str
    obligation_id: str
    period: str
    due: date
    reference: str
    sent_on: date


@dataclass(frozen=True)
class NoteItem:
    planned: PlannedLetter
    wording: str                         # forthcoming | reminder | further
    earlier: SentItem | None = None      # the latest earlier reminder of the same obligation (for "further")
    estimated: bool = False              # the due date hangs on a meeting whose dates are not yet set

    @property
    def article_number(self) -> int:
        match = re.match(r"\d+", self.planned.obligation.article or "")
        return int(match.group()) if match else 0


@dataclass(frozen=True)
class Note:
    """Everything one State is told in one mailing, in treaty order."""

    party: str
    dated: date
    items: tuple[NoteItem, ...]
    follows: SentItem | None = None      # the latest earlier note that raised any of these obligations

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.planned.key for item in self.items)

    def groups(self) -> list[tuple[int, list[NoteItem]]]:
        """The items by article, in treaty order."""
        by_article: dict[int, list[NoteItem]] = {}
        for item in self.items:
            by_article.setdefault(item.article_number, []).append(item)
        return sorted(by_article.items())


def wording(planned: PlannedLetter, dated: date, sent: Iterable[SentItem]) -> tuple[str, SentItem | None]:
    """(the item's wording on the note's date, the earlier reminder it refers to).

    >>> from notifiers.planner import Due, PlannedLetter
    >>> due = Due("LBN", "ccm.art7.annual_report", "2024", date(2025, 4, 30), date(2025, 4, 30), "overdue")
    >>> p = PlannedLetter("k", "LBN", due.obligation_id, "2024", "reminder2", "reminder2", "annual_report", "further",
    ...                   due.due, date(2025, 5, 30), due)
    >>> wording(p, date(2025, 5, 30), [])[0]      # a first letter: never "further", whatever the stage
    'reminder'
    >>> wording(p, date(2025, 4, 1), [])[0]
    'forthcoming'
    >>> earlier = SentItem("LBN", due.obligation_id, "2024", due.due, "CCM/ISU/2025/LBN/ABCDEF", date(2025, 5, 1))
    >>> wording(p, date(2025, 5, 30), [earlier])[0]
    'further'
    """
    if planned.due >= dated:
        return "forthcoming", None
    reminders = [s for s in sent if s.party == planned.party and s.obligation_id == planned.obligation_id
                 and s.period == planned.period and s.due == planned.due and s.due < s.sent_on <= dated]
    if reminders:
        return "further", max(reminders, key=lambda s: (s.sent_on, s.reference))
    return "reminder", None


def consolidate(planned: Iterable[PlannedLetter], sent: Iterable[SentItem], dated: date) -> list[Note]:
    """One note per State, its items in treaty order then by due date; parties in alphabetical order."""
    sent = list(sent)
    by_party: dict[str, list[PlannedLetter]] = {}
    for letter in planned:
        by_party.setdefault(letter.party, []).append(letter)
    notes = []
    for party in sorted(by_party):
        items = []
        for letter in by_party[party]:
            word, earlier = wording(letter, dated, sent)
            items.append(NoteItem(letter, word, earlier, bool(getattr(letter.obligation, "estimated", False))))
        items.sort(key=lambda i: (i.article_number, i.planned.due, i.planned.obligation_id, i.planned.period))
        obligations = {(i.planned.obligation_id, i.planned.period) for i in items}
        related = [s for s in sent if s.party == party and (s.obligation_id, s.period) in obligations
                   and s.sent_on <= dated]
        follows = max(related, key=lambda s: (s.sent_on, s.reference)) if related else None
        notes.append(Note(party=party, dated=dated, items=tuple(items), follows=follows))
    return notes
