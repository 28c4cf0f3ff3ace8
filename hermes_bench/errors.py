"""The one error type users see: a one-line message that names the thing and the fix."""


class HermesBenchError(Exception):
    """Bad input or state the user can fix; the CLI prints it on one line and exits with code 2."""
