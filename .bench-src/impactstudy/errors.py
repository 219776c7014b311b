"""User-facing errors and the exit codes the command line maps them to.

A user's mistake (bad config, unreadable file, unknown council key) is raised as a subclass of
:class:`UserError`; the CLI prints its one-line message and exits with its code, never a traceback.
Anything else is a bug in impactstudy and is allowed to surface as one.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is a complete one-line message."""

    exit_code = 1


class ConfigError(UserError):
    """The study config is missing, malformed or inconsistent with the raw files."""

    exit_code = 2


class DataError(UserError):
    """A raw or processed data file cannot be read or is unusable as it stands."""

    exit_code = 3


class StageOrderError(UserError):
    """A stage was asked to run before the stage it reads from has produced its outputs."""

    exit_code = 4


class LockError(UserError):
    """Another run holds the study's lock."""

    exit_code = 5


class NoSpaceError(UserError):
    """The disk (or the user's file-size limit or quota) is full: an output could not be written."""

    exit_code = 7


NO_SPACE_ERRNOS = frozenset({28, 27, 122})  # ENOSPC, EFBIG (ulimit -f), EDQUOT on Linux


def no_space(err: BaseException, path: object) -> NoSpaceError | None:
    """A :class:`NoSpaceError` for ``path`` when ``err`` says the disk is full (else None).

    Some writers (pyarrow) raise ``OSError`` without an errno, naming the condition in the text only.
    """
    text = str(err)
    if isinstance(err, OSError) and (err.errno in NO_SPACE_ERRNOS or "No space left" in text or "File too large" in text
                                     or "Disk quota" in text):
        return NoSpaceError(f"no space left on {path} (the disk, or the file-size limit, is full); "
                            "free some space and run again: the outputs are as they were before the run")
    return None
