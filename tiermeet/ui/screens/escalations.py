"""Escalations in: what lower tiers pushed up today, with what they saw, decided and why."""

from rich.text import Text

from tiermeet.domain.refs import short_ref
from tiermeet.services.views import EscalationRow, local_midnight
from tiermeet.store.queries import Scope
from tiermeet.ui.screens.textview import TextView


def render_escalations(rows: list[EscalationRow], names: dict[str, str], zone) -> Text:
    """Each escalation with its reason and the context packet of the tier below."""
    out = Text()
    if not rows:
        return Text("Nothing was escalated to this board today.")
    for row in rows:
        e, s = row.escalation, row.signal
        who = "automatic (window breached)" if e.automatic else names.get(e.raised_by, e.raised_by)
        out.append(f"{e.raised_at.astimezone(zone):%H:%M} ", style="bold")
        out.append(f"{short_ref('signal', s.id)} {s.severity.upper()} {s.title}\n", style="bold")
        out.append(f"  from tier {e.from_tier} ({s.line or s.area}) by {who}: {e.reason}\n")
        packet = e.context
        out.append(f"  tier {packet.get('from_tier')} saw it {packet.get('status')}"
                   f"{', acknowledged by ' + names.get(packet['acknowledged_by'], packet['acknowledged_by']) if packet.get('acknowledged_by') else ''}"
                   f"{', window breached' if packet.get('window_breached') else ''}\n", style="dim")
        for d in packet.get("decisions", []):
            out.append(f"  decided {d['kind']} by {names.get(d['by'], d['by'])}: {d.get('rationale') or '—'}\n", style="dim")
        for a in packet.get("actions", []):
            out.append(f"  action: {a['title']} ({names.get(a['owner'], a['owner'])}, {a['status']})\n", style="dim")
        for c in packet.get("comments", []):
            out.append(f"  comment by {names.get(c['by'], c['by'])}: {c['body']}\n", style="dim")
        out.append("\n")
    return out


class EscalationsScreen(TextView):
    """Today's escalations into a tier board."""

    text_id = "escalations"

    def __init__(self, tier: int, scope: Scope) -> None:
        super().__init__()
        self.tier, self.scope = tier, scope
        self.heading = f"[b]Escalations in[/] — pushed up to tier {tier} today"

    def render_text(self) -> Text:
        app = self.app
        rows = app.services.views.escalations_in(self.tier, self.scope, local_midnight(app.now(), app.zone))
        return render_escalations(rows, {p.id: p.name for p in app.people}, app.zone)
