"""The one error type for bad input: a message naming the key, the bad value and what is allowed."""


class ConfigError(ValueError):
    """Bad configuration or input data; the CLI prints the message as one line and exits 2."""
