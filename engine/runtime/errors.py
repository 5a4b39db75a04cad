"""The exit statuses of ``ccm`` and the exceptions that carry them, mapped in one place (:func:`exit_for`).

0 nothing needs attention; 1 something needs attention; 2 a mistake in the input (the user can
fix it: a bad option, a bad config file, an unknown party); 3 an operational failure (the
database unreachable, a folder not writable, SMTP not configured). Every failure is one
sentence on standard error; the traceback only with ``ccm --debug``.
"""

from __future__ import annotations

from collections.abc import Callable

OK, ATTENTION, INPUT, OPERATIONAL = 0, 1, 2, 3


class CcmError(Exception):
    """A failure the user meets, with its sentence and exit status."""

    exit_code = INPUT

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(CcmError):
    """A mistake in the input (exit status 2)."""

    exit_code = INPUT


class OperationalFailure(CcmError):
    """The input is fine, the machine is not (exit status 3): database, folder, SMTP."""

    exit_code = OPERATIONAL


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def exit_for(error: BaseException, database: Callable[[], str] = lambda: "") -> tuple[int, str]:
    """The exit status and the sentence for an exception that reached the command line.

    ``database`` names the configured database (without its password) for a database that cannot
    be reached; the command line passes it, since this module sits below the store and the settings.

    The input errors of the engine's layers (settings, rulebook, registry, records, contacts,
    letter policy) are 2; a database that cannot be reached or used, a file or folder that cannot
    be written, are 3; anything else is a bug, also 3, with a hint to rerun with ``--debug``.
    """
    if isinstance(error, CcmError):
        return error.exit_code, str(error)
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"SettingsError", "PackError", "RulebookError", "RegistryError", "PolicyError", "UnknownPartyError",
                "RecordError", "ContactError", "ImportError_", "EvaluationError", "DatabaseNotInitialised"}:
        return INPUT, str(error)     # as written: it may start with a file name
    if "DBAPIError" in names and "DataError" in names:     # a value the database's column refuses
        orig = getattr(error, "orig", None)
        return INPUT, f"the database refused a value: {_first_line(orig if orig is not None else error)}"
    if "DBAPIError" in names and names & {"OperationalError", "InterfaceError"}:
        orig = getattr(error, "orig", None)
        where = database()
        return OPERATIONAL, (f"the database{' ' + where if where else ''} cannot be reached or used: "
                             f"{_first_line(orig if orig is not None else error)}")
    if isinstance(error, OSError) and error.strerror is None and error.filename is None:   # raised with a sentence
        return OPERATIONAL, str(error)
    if isinstance(error, PermissionError):
        return OPERATIONAL, f"cannot write {error.filename or 'a file'}: permission denied"
    if isinstance(error, OSError):
        what = f" {error.filename}" if error.filename else ""
        return OPERATIONAL, f"cannot use{what}: {error.strerror or error}"
    return OPERATIONAL, (f"an unexpected error stopped the command ({type(error).__name__}: {_first_line(error)}); "
                         "run it again with --debug for the traceback and report it")
