"""The one exception type that user-facing code turns into a single error line and exit code 2."""


class RampartError(Exception):
    """Bad input or a failed external tool, described in one line for the user."""
