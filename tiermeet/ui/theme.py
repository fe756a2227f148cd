"""The high-contrast kiosk theme: black on white, strong colours, readable across a
shop floor under bright lights."""

from textual.theme import Theme

KIOSK_THEME = Theme(
    name="tiermeet-kiosk",
    primary="#003f9e",
    secondary="#000000",
    accent="#b35c00",
    warning="#b35c00",
    error="#c00000",
    success="#006b1b",
    foreground="#000000",
    background="#ffffff",
    surface="#f2f2f2",
    panel="#e0e0e0",
    dark=False,
    text_alpha=1.0,
)
