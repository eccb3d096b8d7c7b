"""The one error type a user can act on."""


class ConfigError(ValueError):
    """A configuration or input the user must change; the message says what to change."""
