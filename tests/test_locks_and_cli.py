"""Destination locks (including recovery after SIGKILL) and the CLI's help and exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import BIN
from phasegate.errors import LockHeldError
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
        assert f"pid {holder.pid}" in str(info.value)
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
