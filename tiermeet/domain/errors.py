"""The one error type the services raise when a request breaks a rule.

Its message is written for the person at the kiosk ("signal S-1a2b3c4d is dismissed;
reopen it first"), so the UI and the command line show it as it is.
"""


class DomainError(Exception):
    """A request refused by a domain rule: illegal transition, unknown person, bad value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
