"""What the digest lists, gathered party by party while the check streams through the parties.

The check touches every obligation of every party, but the digest lists only some of them:
overdue ones, deadlines within the window, pending extension requests, decisions to record,
missed requests with the deadline they put at risk, unknown obligations; reports with no record
of receipt are only counted. :class:`Listed` keeps those rows and those counts and lets every
other row go as soon as its party is done, so the check's memory follows the size of the digest,
not the number of parties. The dashboard builds the same summary from live evaluations.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any, Iterable

WINDOW_DAYS = 90
_SLIM = ("party", "obligation_id", "period", "article", "due", "status", "status_reason", "meeting")


def slim(party: str, obligation) -> dict[str, Any]:
    """An obligation as the digest reads it (no provenance)."""
    o = obligation
    return {"party": party, "obligation_id": o.id, "period": o.period or "", "article": o.article, "due": o.due,
            "status": o.status, "status_reason": o.status_reason, "meeting": o.meeting, "estimated": o.estimated}


def rule_groups(rulebook) -> dict[str, set[str]]:
    """Obligation rule ids by their status mode (``report``, ``extension_request``, ...)."""
    groups: dict[str, set[str]] = {}
    for rule in rulebook.rules:
        if rule.is_obligation:
            groups.setdefault(rule.status or "", set()).add(rule.id)
    return groups


class Listed:
    """The rows the digest's sections list, and the counts it prints instead of rows."""

    def __init__(self, rulebook, as_of: date, next_meeting: dict[str, Any] | None):
        groups = rule_groups(rulebook)
        self.as_of, self.next_meeting = as_of, next_meeting
        self.report_ids = groups.get("report", set())
        self.request_ids = groups.get("extension_request", set())
        self.follows = {r.id: r.follows for r in rulebook.rules if r.follows}
        self.order = {r.id: r.order for r in rulebook.rules}     # the rules' `order`: e.g. initial reports first
        # the status vocabulary's groups (rules/common/statuses.toml): deadlines still open, statuses always listed
        self.open = rulebook.vocabulary.group("open")
        self.always = rulebook.vocabulary.group("listed")
        self.window_end = as_of + timedelta(days=WINDOW_DAYS)
        self.rows: list[dict[str, Any]] = []
        self.unknown_reports: Counter = Counter()      # obligation id -> reports past due with no record of receipt
        self.unknown_report_parties = 0

    def add_party(self, rows: Iterable[dict[str, Any]]) -> None:
        """One party's obligations (as :func:`slim` rows): keep what a section lists, count the rest."""
        rows = list(rows)
        at_risk = {self.follows.get(o["obligation_id"]) for o in rows if o["status"] == "missed"}
        unknown_here = False
        for o in rows:
            if o["status"] == "unknown" and o["obligation_id"] in self.report_ids:
                self.unknown_reports[o["obligation_id"]] += 1
                unknown_here = True
            elif self._listed(o) or (o["period"] == "" and o["obligation_id"] in at_risk and o["status"] in self.open):
                self.rows.append(o)
        self.unknown_report_parties += unknown_here

    def add_evaluation(self, evaluation) -> None:
        self.add_party(slim(evaluation.participant.iso3, o) for o in evaluation.obligations)

    def _listed(self, o: dict[str, Any]) -> bool:
        status = o["status"]
        if status in self.always:
            return True
        if status != "pending":
            return False
        return self.as_of <= o["due"] <= self.window_end or o["obligation_id"] in self.request_ids

    # -- the sections -------------------------------------------------------------------
    def overdue_reports(self) -> list[dict[str, Any]]:
        rows = [o for o in self.rows if o["status"] == "overdue" and o["obligation_id"] in self.report_ids]
        return sorted(rows, key=lambda o: (self.order.get(o["obligation_id"], 0), o["due"], o["party"]))

    def overdue_other(self) -> list[dict[str, Any]]:
        rows = [o for o in self.rows if o["status"] == "overdue" and o["obligation_id"] not in self.report_ids]
        return sorted(rows, key=lambda o: (o["due"], o["party"]))

    def upcoming(self) -> list[dict[str, Any]]:
        rows = [o for o in self.rows if o["status"] == "pending" and self.as_of <= o["due"] <= self.window_end]
        return sorted(rows, key=lambda o: (o["due"], o["party"]))

    def with_status(self, status: str, ids: set[str] | None = None) -> list[dict[str, Any]]:
        rows = [o for o in self.rows if o["status"] == status and (ids is None or o["obligation_id"] in ids)]
        return sorted(rows, key=lambda o: (o["due"], o["party"], o["obligation_id"], o["period"]))

    def extension_requests(self) -> list[dict[str, Any]]:
        """Pending extension requests due for the next meeting (or before it opens)."""
        if not self.next_meeting:
            return []
        code, start = self.next_meeting["code"], self.next_meeting["start"]
        rows = [o for o in self.rows if o["status"] == "pending" and o["obligation_id"] in self.request_ids
                and (o.get("meeting") == code or o["due"] <= start)]
        return sorted(rows, key=lambda o: (o["due"], o["party"]))

    def unknown_other(self) -> list[dict[str, Any]]:
        return [o for o in self.with_status("unknown") if o["obligation_id"] not in self.report_ids]

    def unknown_counts(self) -> dict[str, Any]:
        """How many reports past due have no record of receipt, by obligation: counted, never listed as overdue."""
        return {"total": sum(self.unknown_reports.values()), "by_obligation": dict(sorted(self.unknown_reports.items())),
                "parties": self.unknown_report_parties}

    def missed_at_risk(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(missed request, the deadline it would have extended) where that deadline is still open."""
        by_key = {(o["party"], o["obligation_id"]): o for o in self.rows if o["period"] == ""}
        pairs = []
        for request in self.with_status("missed"):
            deadline = by_key.get((request["party"], self.follows.get(request["obligation_id"], "")))
            if deadline is not None and deadline["status"] in self.open:
                pairs.append((request, deadline))
        return pairs

    def needs_attention(self, errors: list) -> bool:
        """Something the ISU must act on: an obligation overdue, a deadline near, a request to submit,
        a decision to record, a missed request putting an open deadline at risk, a party not evaluated.
        Reports with no record of receipt are counted apart and are not, by themselves, attention."""
        return bool(self.overdue_reports() or self.overdue_other() or self.upcoming() or self.extension_requests()
                    or self.with_status("awaiting_decision") or self.missed_at_risk() or errors)
