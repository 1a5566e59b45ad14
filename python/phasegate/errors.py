"""Exception types and the exit codes the CLI maps them to (documented in the README)."""

from __future__ import annotations


class ExitCode:
    OK = 0
    PARTIAL = 1  # some records rejected by a destination
    BLOCKED = 2  # a pre-activation check failed; nothing was sent
    CONFIG = 3  # the configuration is invalid
    LOCKED = 4  # another sync holds the destination lock
    BUILD_FAILED = 5  # the dbt build failed
    UNAVAILABLE = 6  # a destination stayed unavailable past its retry budget; rerun later
    REFUSED = 7  # a destination refused the request permanently (credentials, settings)
    INTERNAL = 70


class PhasegateError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code = ExitCode.INTERNAL


class ConfigError(PhasegateError):
    exit_code = ExitCode.CONFIG


class BuildError(PhasegateError):
    exit_code = ExitCode.BUILD_FAILED


class BlockedError(PhasegateError):
    """A pre-activation check failed; carries the check results."""

    exit_code = ExitCode.BLOCKED

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = results or []


class LockHeldError(PhasegateError):
    exit_code = ExitCode.LOCKED


class DestinationError(PhasegateError):
    """Base for errors raised by a destination while writing a batch."""


class TransientError(DestinationError):
    """Retrying the same batch later may succeed (timeouts, 5xx, 429)."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DestinationError):
    """The request will fail again unchanged (auth, validation of the whole batch)."""

    exit_code = ExitCode.REFUSED
