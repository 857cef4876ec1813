"""`medchat up`'s processes: children that die with it, an engine or worker that crashes is
restarted with backoff while the gateway and the data stay up, and a state file in the data
directory that tells a running stack from one that was killed.

Why each part: a SIGKILLed `medchat up` cannot stop anything, so its children get the
kernel's parent-death signal (Linux); the embedded Postgres and Redis are started by their
libraries, outlive it, and are found and reused by the next start on the same directory.
The gateway already answers 503 + Retry-After while the engine is down (and keeps every
question); taking the whole stack down with the engine would defeat that.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

STATE_FILE = "medchat-up.json"
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0  # a child that ran this long starts its backoff from the beginning


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    restart: bool = True  # False: the platform cannot go on without it (the gateway)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    retry_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        self.started_at, self.retry_at = time.monotonic(), None


@dataclass
class StateFile:
    """`<data dir>/medchat-up.json`: the running `medchat up`, its address, its Redis and
    its children's pids (what `medchat apikey revoke` and the next start read)."""

    data_dir: Path
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.data_dir / STATE_FILE

    def read(self) -> dict[str, Any]:
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def running(self) -> dict[str, Any] | None:
        """The state of a live `medchat up` on this directory, or None."""
        state = self.read()
        pid = state.get("pid")
        return state if isinstance(pid, int) and pid != os.getpid() and alive(pid) else None

    def claim(self, url: str, out: Console) -> None:
        """Take the directory, refusing when a live `medchat up` has it; after one that was
        killed, stop the children it left and say what is reused."""
        if (live := self.running()) is not None:
            raise click.ClickException(
                f"DISC-MedChat is already running on {self.data_dir} (pid {live['pid']},"
                f" {live.get('url')}): open it, or stop it (Ctrl-C in its terminal, or"
                f" kill -INT {live['pid']}) before starting another"
            )
        stale = self.read()
        if stale.get("pid"):
            out.print(
                f"[yellow]an earlier medchat up (pid {stale['pid']}) on {self.data_dir} did"
                " not stop cleanly: cleaning up after it[/yellow]"
            )
            for name, pid in (stale.get("children") or {}).items():
                if isinstance(pid, int) and alive(pid) and sys.executable in _cmdline(pid):
                    out.print(f"  stopping its {name} (pid {pid})")
                    os.kill(pid, signal.SIGTERM)
        self.values = {"pid": os.getpid(), "url": url, "children": {}}
        self._write()

    def update(self, **values: Any) -> None:
        self.values.update(values)
        self._write()

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values))
        tmp.replace(self.path)


def leftover_servers(data_dir: Path) -> list[str]:
    """The embedded servers a killed `medchat up` left running, which this start reuses."""
    found = []
    try:
        pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        if alive(pid):
            found.append(f"Postgres (pid {pid})")
    except (OSError, ValueError, IndexError):
        pass
    try:
        settings = json.loads((data_dir / "redis.db.settings").read_text())
        pid = int(Path(settings["pidfile"]).read_text().strip())
        if alive(pid):
            found.append(f"Redis (pid {pid})")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return found


class Supervisor:
    def __init__(self, state: StateFile, out: Console):
        self.state, self.out = state, out
        self.children: list[Child] = []

    def add(self, child: Child) -> subprocess.Popen[bytes]:
        child.start()
        self.children.append(child)
        self._record()
        assert child.proc is not None
        return child.proc

    def watch(self) -> None:
        """Until a child that cannot be restarted stops (raises) or this process is told
        to stop (KeyboardInterrupt from the signal handlers)."""
        while True:
            self.check()
            time.sleep(0.5)

    def check(self) -> None:
        now = time.monotonic()
        for child in self.children:
            assert child.proc is not None
            if child.retry_at is not None:
                if now >= child.retry_at:
                    child.start()
                    self._record()
                    self.out.print(f"{child.name}: restarted (restart {child.restarts})")
                continue
            status = child.proc.poll()
            if status is None:
                continue
            if not child.restart:
                raise click.ClickException(f"{child.name} stopped (status {status}); shutting down")
            if now - child.started_at >= HEALTHY_AFTER_S:
                child.restarts = 0
            delay = min(2.0**child.restarts, BACKOFF_MAX_S)
            child.restarts += 1
            child.retry_at = now + delay
            self.out.print(
                f"[yellow]{child.name} exited with status {status}; restarting in {delay:.0f} s"
                " (the gateway stays up and answers 503 meanwhile; questions are kept)[/yellow]"
            )

    def stop_all(self) -> None:
        procs = [c.proc for c in reversed(self.children) if c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _record(self) -> None:
        self.state.update(
            children={c.name: c.proc.pid for c in self.children if c.proc is not None}
        )
