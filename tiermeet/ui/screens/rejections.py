"""Changes the central server refused: what, why, and what stands instead. Shown to the
people who made them (sync-protocol §2.2: never drop a rejection silently)."""

import json

from rich.text import Text

from tiermeet.ui.screens.textview import TextView


class RejectionsScreen(TextView):
    """Rejected changes, newest first; opening it marks them seen."""

    heading = "[b]Changes the server refused[/]"
    text_id = "rejections"

    def render_text(self) -> Text:
        from tiermeet.sync.client import rejected_changes
        from tiermeet.sync.local import mark_rejections_seen

        app = self.app
        rows = rejected_changes(app.services)
        mark_rejections_seen(app.services.ctx.engine, app.now())
        names = {p.id: p.name for p in app.people}
        out = Text()
        if not rows:
            out.append("No change has been refused.")
        for r in rows:
            out.append(f"{r.rejected_at.astimezone(app.zone):%a %d %b %H:%M} ", style="bold")
            out.append(f"{r.name} by {names.get(r.actor, r.actor)}{'' if r.seen else '  (new)'}\n", style="bold")
            out.append(f"  not applied: {r.detail} [{r.reason_code}]\n")
            for winner in r.winning:
                out.append(f"  what stands: {json.dumps(winner, ensure_ascii=False)[:300]}\n", style="dim")
            out.append("\n")
        return out
