"""Which board to open: every tier and the lines, areas or plant it meets for."""

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tiermeet.settings import PLANT_SCOPE, Config


def board_choices(config: Config) -> list[tuple[int, str, str]]:
    """(tier, scope id, label) for every board the plant runs, in tier order."""
    choices = []
    for tier in sorted(config.tiers, key=lambda t: t.level):
        if tier.scope == "line":
            units = [(ln.id, ln.name) for a in config.areas for ln in a.lines]
        elif tier.scope == "area":
            units = [(a.id, a.name) for a in config.areas]
        else:
            units = [(PLANT_SCOPE, config.plant.name)]
        if tier.units:
            units = [u for u in units if u[0] in tier.units]
        choices += [(tier.level, uid, f"Tier {tier.level} · {tier.name} · {name}") for uid, name in units]
    return choices


class BoardPicker(ModalScreen[tuple[int, str] | None]):
    """Returns (tier, scope) of the chosen board."""

    BINDINGS = [("escape", "dismiss(None)", "Cancel")]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.choices = board_choices(config)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="picker"):
            yield Label("Open which board?", classes="dialog-title")
            yield OptionList(*[Option(label, id=f"{tier}|{scope}") for tier, scope, label in self.choices])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        tier, scope = event.option.id.split("|", 1)
        self.dismiss((int(tier), scope))
