"""The one error type users see: a one-line message that names the thing and the fix."""

from collections.abc import Iterator
from contextlib import contextmanager


class HermesBenchError(Exception):
    """Bad input or state the user can fix; the CLI prints it on one line and exits with code 2."""


@contextmanager
def loading(what: str, fix: str = "") -> Iterator[None]:
    """from_pretrained's failures (no such folder, no hub, not that kind of model) as one line naming `what`, the
    first line of the cause, and the fix."""
    try:
        yield
    except (OSError, ValueError) as err:
        raise HermesBenchError(f"cannot load {what}: {str(err).splitlines()[0]}" + (f"; {fix}" if fix else "")) \
            from None
