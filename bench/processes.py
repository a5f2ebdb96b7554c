"""Processes a benchmark starts: each in a session of its own, so it and whatever it forks form
one process group, stopped together at the end (by that group's id, never by name)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path


def start(argv: list[str], *, cwd: Path, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (field 5 of /proc/<pid>/stat); zombies excluded."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def stop_group(pgid: int, *, grace_s: float = 30.0, first: signal.Signals = signal.SIGTERM) -> None:
    """Signal every process of group `pgid`, wait up to `grace_s` for them to go, then kill the rest."""
    if not group_members(pgid):
        return
    try:
        os.killpg(pgid, first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_members(pgid):
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def stop(proc: subprocess.Popen[bytes], *, grace_s: float = 30.0) -> None:
    """Stop a process started by `start` and its whole group, and reap it."""
    stop_group(proc.pid, grace_s=grace_s, first=signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_http(url: str, *, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers below 500; fail at once if `proc` has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")
        time.sleep(0.5)
