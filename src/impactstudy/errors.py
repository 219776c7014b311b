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
