"""Exception types and the exit codes the CLI maps them to (documented in the README and
in `phasegate --help`)."""

from __future__ import annotations

from collections.abc import Iterable


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


# When syncs of one run end differently, the run exits with the most severe of their codes.
# What needs a person before any rerun can succeed comes first, the broadest cause first (a
# bug, the whole config, the whole build, the data behind a gate, one destination's
# credentials); then what a plain rerun clears (an outage is a real failure to deliver, a held
# lock only means another run is doing the work); then partial success. So a scheduler that
# retries on 6 or 4 is never told to retry what a retry cannot fix.
SEVERITY = (
    ExitCode.INTERNAL,
    ExitCode.CONFIG,
    ExitCode.BUILD_FAILED,
    ExitCode.BLOCKED,
    ExitCode.REFUSED,
    ExitCode.UNAVAILABLE,
    ExitCode.LOCKED,
    ExitCode.PARTIAL,
    ExitCode.OK,
)


def severity_rank(code: int) -> int:
    """0 for the most severe code; a code outside SEVERITY ranks with INTERNAL."""
    return SEVERITY.index(code) if code in SEVERITY else 0


def most_severe(codes: Iterable[int]) -> int:
    return min(codes, key=severity_rank, default=ExitCode.OK)


class PhasegateError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code = ExitCode.INTERNAL
    # Set when raised at the end of an activation or check: every sync's outcome, so the
    # caller can show the syncs that went well beside the one that did not.
    report = None


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

    def __init__(self, message: str, holder: str = "unknown"):
        super().__init__(message)
        self.holder = holder  # the pid in the lock file


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
