"""Starting and stopping local servers, for `medchat up`, the benchmarks and the tests: a free
port, waiting until a URL answers (or its process dies), stopping a process for sure."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class NotReady(RuntimeError):
    """A server that exited or did not answer in time; the message says which, with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, chars: int = 4000) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def http_status(url: str, timeout_s: float = 5) -> int | None:
    """The status `url` answers GET with; None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:  # refused while it starts, reset, timed out
        return None


def wait_for_http(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    timeout_s: float,
    what: str | None = None,
    log: Path | None = None,
    ready: tuple[int, ...] = (200,),
    interval_s: float = 0.25,
) -> None:
    """Until `url` answers with one of `ready`; NotReady when `proc` exits first or time runs
    out (with the end of `log`, where the process writes)."""
    name = what or url
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise NotReady(f"{name} exited with status {proc.returncode}\n{log_tail(log)}".rstrip())
        if http_status(url) in ready:
            return
        if time.monotonic() > deadline:
            raise NotReady(
                f"{name} did not answer {url} within {timeout_s:.0f} s\n{log_tail(log)}".rstrip()
            )
        time.sleep(interval_s)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate a server process; kill it if it does not leave in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
