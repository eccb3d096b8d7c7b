"""Lookback's errors: each message says what to change or what to do."""


class LookbackError(Exception):
    """Anything Lookback refuses or cannot do, with a message a user can act on; catch this to show it."""


class ConfigError(LookbackError, ValueError):
    """A configuration or input the user must change; the message says what to change."""
