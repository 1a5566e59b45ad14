"""Destination locks (including recovery after SIGKILL) and the CLI's help and exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import BIN, REPO
from phasegate.errors import (
    SEVERITY,
    BlockedError,
    ConfigError,
    ExitCode,
    LockHeldError,
    PermanentError,
    TransientError,
    most_severe,
)
from phasegate.locks import destination_lock

HOLDER = """
import sys, pathlib
from phasegate.locks import destination_lock
with destination_lock(pathlib.Path(sys.argv[1]), "braze_main"):
    print("locked", flush=True)
    sys.stdin.read()  # hold until killed or stdin closes
"""


def test_second_sync_is_refused_and_a_killed_holder_releases_the_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as info, destination_lock(tmp_path, "braze_main"):
            pass
        assert f"pid {holder.pid}" in str(info.value) and info.value.holder == str(holder.pid)
        # Another destination is independent.
        with destination_lock(tmp_path, "webhook"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with destination_lock(tmp_path, "braze_main") as path:
            assert path.read_text() != str(holder.pid)
    finally:
        if holder.poll() is None:
            holder.kill()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "phasegate"), *args], capture_output=True, text=True, timeout=120)


def test_help_teaches_every_command_and_the_exit_codes():
    top = _cli("--help")
    assert top.returncode == 0
    for command in ("generate", "load", "build", "backfill", "check", "sync", "run", "demo"):
        assert command in top.stdout
    assert "blocked by a check" in top.stdout.replace("\n", " ")
    sync = _cli("sync", "--help")
    assert sync.returncode == 0 and "--dry-run" in sync.stdout and "--reason" in sync.stdout


def test_bad_arguments_exit_with_the_configuration_code():
    proc = _cli("build", "--as-of", "yesterday")
    assert proc.returncode == 3
    assert "YYYY-MM-DD" in proc.stderr
    proc = _cli("sync", "--config", "/nonexistent/phasegate.yml")
    assert proc.returncode == 3 and "does not exist" in proc.stderr


def test_exit_codes_and_their_precedence_are_documented_where_users_look():
    help_text = " ".join(_cli("--help").stdout.split())
    assert "7 a destination refused the request permanently" in help_text
    order = ", ".join(str(c) for c in SEVERITY)
    assert order == "70, 3, 5, 2, 7, 6, 4, 1, 0" and f"in this order: {order}" in help_text
    readme = (REPO / "README.md").read_text()
    assert "| 7 | a destination refused the request permanently" in readme
    assert f"**{' > '.join(str(c) for c in SEVERITY)}**" in readme


def test_the_most_severe_code_wins_each_error_with_its_own():
    assert PermanentError("401").exit_code == ExitCode.REFUSED == 7
    assert TransientError("503").exit_code == ExitCode.UNAVAILABLE
    assert (ConfigError("x").exit_code, BlockedError("x").exit_code) == (3, 2)
    # needs a person before a rerun can succeed, broadest cause first ...
    assert most_severe([ExitCode.CONFIG, ExitCode.INTERNAL]) == ExitCode.INTERNAL
    assert most_severe([ExitCode.BLOCKED, ExitCode.BUILD_FAILED, ExitCode.CONFIG]) == ExitCode.CONFIG
    assert most_severe([ExitCode.REFUSED, ExitCode.BLOCKED]) == ExitCode.BLOCKED
    # ... over what a rerun clears
    assert most_severe([ExitCode.UNAVAILABLE, ExitCode.REFUSED, ExitCode.LOCKED]) == ExitCode.REFUSED
    assert most_severe([ExitCode.LOCKED, ExitCode.UNAVAILABLE]) == ExitCode.UNAVAILABLE
    assert most_severe([ExitCode.PARTIAL, ExitCode.LOCKED, ExitCode.OK]) == ExitCode.LOCKED
    assert most_severe([ExitCode.OK, ExitCode.PARTIAL]) == ExitCode.PARTIAL
    assert most_severe([]) == ExitCode.OK
    assert most_severe([ExitCode.CONFIG, 99]) == 99  # an unknown code is treated as a bug
