"""The detail pane: one signal's full text, the AI output, and its whole history."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static
from typing import TYPE_CHECKING

from tiermeet.domain.refs import short_ref
from tiermeet.timefmt import span, time_left

if TYPE_CHECKING:
    from tiermeet.services.views import SignalStory


def _when(at: datetime, zone) -> str:
    return f"{at.astimezone(zone):%a %d %b %H:%M}"


def render_story(story: SignalStory, now: datetime, zone) -> Text:
    """The story of a signal as styled text."""
    s = story.signal
    name = story.names.get
    out = Text()
    out.append(f"{short_ref('signal', s.id)}  ", style="bold")
    out.append(f"{s.severity.upper()} · {s.category} · tier {s.tier} · {s.status}\n", style="bold")
    out.append(f"{s.title}\n\n", style="bold")
    out.append(f"{s.line or s.area}{' · ' + s.asset if s.asset else ''} · detected {_when(s.detected_at, zone)}"
               f" ({span(now - s.detected_at)} ago)\n")
    left = time_left(s.deadline, now)
    out.append(f"Window: due {_when(s.deadline, zone)} — ", style="")
    out.append(f"{left} left\n" if not left.startswith("-") else f"breached by {left[1:]}\n",
               style="red bold" if left.startswith("-") else "")
    out.append(f"Policy: {s.autonomy.replace('_', ' ')} (rule: {s.policy_rule})\n")
    if s.detail:
        out.append(f"\n{s.detail}\n")
    if s.suggested_action:
        out.append("\nSuggested action: ", style="bold")
        out.append(f"{s.suggested_action}\n")
    if s.evidence_url:
        out.append("Evidence: ", style="bold")
        out.append(f"{s.evidence_url}\n", style=f"underline link {s.evidence_url}")
    out.append("\nAI output\n", style="bold underline")
    conf = f"{s.confidence:.0%}" if s.confidence is not None else "—"
    out.append(f"{s.source} {s.model_version or ''} · {s.kind} · confidence {conf}\n")
    for key, value in (s.extra or {}).items():
        out.append(f"  {key}: {value}\n", style="dim")
    if story.decisions:
        out.append("\nDecisions\n", style="bold underline")
        for d in story.decisions:
            extra = f" ({d.disposition})" if d.disposition else f" until {_when(d.shelved_until, zone)}" if d.shelved_until else ""
            out.append(f"{_when(d.decided_at, zone)} T{d.tier} {d.kind}{extra} by {name(d.decided_by, d.decided_by)}")
            out.append(f" — {d.rationale}\n" if d.rationale else "\n")
    if story.actions:
        out.append("\nActions\n", style="bold underline")
        for a in story.actions:
            late = a.due_at < now and a.status in ("open", "in_progress")
            out.append(f"{a.title} · {name(a.owner_id, a.owner_id)} · due {_when(a.due_at, zone)} · {a.status.replace('_', ' ')}\n",
                       style="red" if late else "")
    if story.escalations:
        out.append("\nEscalations\n", style="bold underline")
        for e in story.escalations:
            who = "automatic" if e.automatic else name(e.raised_by, e.raised_by)
            out.append(f"{_when(e.raised_at, zone)} T{e.from_tier}→T{e.to_tier} by {who}: {e.reason}\n")
            packet = e.context
            seen = [f"{d['kind']} by {name(d['by'], d['by'])}" for d in packet.get("decisions", [])]
            out.append(f"  tier {packet.get('from_tier')} saw it as {packet.get('status')}"
                       f"{', window breached' if packet.get('window_breached') else ''}"
                       f"{'; decided: ' + ', '.join(seen) if seen else '; no decision'}\n", style="dim")
    if story.comments:
        out.append("\nComments\n", style="bold underline")
        for c in story.comments:
            out.append(f"{_when(c.created_at, zone)} {name(c.author_id, c.author_id)}: {c.body}\n")
    out.append("\nHistory\n", style="bold underline")
    for entry in story.audit:
        out.append(f"{_when(entry.at, zone)} {entry.op} by {name(entry.actor, entry.actor)} on {entry.device}\n", style="dim")
    return out


class SignalDetail(VerticalScroll):
    """Scrollable pane showing the selected signal's story."""

    DEFAULT_CSS = """
    SignalDetail { padding: 0 1; }
    """

    def compose(self):
        yield Static("Select a signal to see its story.", id="detail-text")

    def show(self, story: SignalStory | None, now: datetime, zone) -> None:
        """Render ``story`` (or the empty hint)."""
        text = render_story(story, now, zone) if story else "Select a signal to see its story."
        self.query_one("#detail-text", Static).update(text)
