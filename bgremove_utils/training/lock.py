"""One training run per checkpoint folder: a lock file the run holds from start to end, so that a
second run on the same folder (a second kernel, the CLI beside a notebook) stops at once, named. The
run touches the file every minute; a lock nobody touched for ten minutes is left by a run that is
gone, also on another machine (a Colab runtime that died with its checkpoints in Google Drive).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import CheckpointError
from ..files import write_problem
from .distributed import Process

LOCK_FILE = "run.lock"  # in a checkpoint folder while a run trains there: {"pid", "host", "since", ...}
HEARTBEAT_S = 60.0  # a run touches its lock file this often (its modification time: the heartbeat)
STALE_AFTER_S = 600.0  # a lock untouched this long was left by a run that is gone, on whatever machine


def _write_lock(path: Path) -> dict:
    """Create `path` if nobody has (os.open with O_CREAT | O_EXCL: atomic, also on NFS v3+) and
    write this run's pid, host and start into it; FileExistsError when another run holds it."""
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "token": uuid.uuid4().hex}
    program = "python -m bgremove_utils" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    mine["command"] = " ".join([program, *sys.argv[1:]])[:200]  # for a person who opens the file
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(mine, handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return mine


def _read_lock(path: Path) -> dict | None:
    """The holder's record; {} while it is being written or when unreadable; None once it is gone."""
    for _ in range(20):  # a lock created a moment ago may not hold its record yet
        try:
            holder = json.loads(path.read_text())
            if isinstance(holder, dict) and "pid" in holder:
                return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def _alive(pid: int) -> bool:
    """Whether a process of that id runs on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale(holder: dict, silent_for: float = 0.0) -> bool:
    """A lock left by a run that is gone: its heartbeat stopped (the file untouched for `silent_for`
    seconds, more than STALE_AFTER_S: a live run touches it every HEARTBEAT_S, whichever machine it
    runs on), or it was written on this host by a process no longer alive (a run killed with
    SIGKILL, a kernel restarted: no need to wait). Another host's process cannot be seen from here:
    its lock is judged by its heartbeat alone."""
    if not holder:
        return False
    if silent_for > STALE_AFTER_S:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    return holder["pid"] != os.getpid() and not _alive(int(holder["pid"]))


def _silent_for(lock: Path) -> float:
    """Seconds since the lock file was last touched (0 if it is gone or unreadable)."""
    try:
        return max(0.0, time.time() - lock.stat().st_mtime)
    except OSError:
        return 0.0


def _in_use(folder: Path, holder: dict) -> CheckpointError:
    lock = folder / LOCK_FILE
    if not holder:
        who = f"a run whose lock file cannot be read ({lock})"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        who = f"pid {holder['pid']} on {holder.get('host', '?')}, since {since}"
    return CheckpointError(
        f"{folder}: another training run is using this checkpoint folder ({who}); wait for it to end, "
        f"or train with another --checkpoint-dir (checkpoint_dir=...); if no such run is going on, delete {lock} "
        f"(a lock no run touched for {STALE_AFTER_S / 60:.0f} minutes is taken over by the next run)."
    )


def acquire(folder: Path) -> dict:
    """Take the lock of `folder` (made if missing), taking over a stale one; this run's record. A
    CheckpointError when another run holds it, or when the folder cannot be written."""
    lock = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a stale lock removed: try again (another run may have taken it meanwhile)
            try:
                return _write_lock(lock)
            except FileExistsError:
                holder, silent = _read_lock(lock), _silent_for(lock)
                if holder is not None and not is_stale(holder, silent):
                    raise _in_use(folder, holder) from None
                if holder:
                    who = f"pid {holder['pid']} on {holder.get('host', '?')}"
                    why = (
                        f"untouched for {silent / 60:.0f} minutes" if silent > STALE_AFTER_S else "its process is gone"
                    )
                    print(f"Taking over {lock}: its run ({who}) is gone, {why}.")
                    lock.unlink(missing_ok=True)
        raise _in_use(folder, _read_lock(lock) or {})
    except OSError as exc:  # the folder cannot be made or written: said now, not after an epoch of training
        problem = write_problem(exc, lock) or f"{exc.strerror or exc}: choose another folder"
        raise CheckpointError(f"cannot write in {folder}: {problem}") from None


def release(folder: Path, mine: dict) -> None:
    """Remove the lock, if it is still this run's (a lock taken over by mistake stays the other's)."""
    lock = folder / LOCK_FILE
    if (_read_lock(lock) or {}).get("token") == mine["token"]:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(folder: Path, proc: Process) -> Iterator[None]:
    """Hold `folder`'s lock for the block, released at its end, after an error or Ctrl-C too. Under
    torchrun rank 0 takes it and the others only learn whether it could; a folder this made and
    left empty (the run failed before writing anything) is removed again."""
    made, mine, error = not folder.exists(), None, None
    if proc.is_main:
        try:
            mine = acquire(folder)
        except CheckpointError as exc:
            error = exc
    if proc.anyone(error is not None):  # every process stops, not rank 0 alone
        raise error or CheckpointError(f"{folder}: rank 0 could not take this checkpoint folder (it says why)")
    beating = _heartbeat(folder / LOCK_FILE) if mine is not None else None
    try:
        yield
    finally:
        if beating is not None:
            beating.set()
        if mine is not None:
            release(folder, mine)
            if made and not any(folder.iterdir()):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _heartbeat(lock: Path) -> threading.Event:
    """Touch `lock` every HEARTBEAT_S seconds from a background thread, until the returned event is
    set: the sign, on any machine that sees the folder, that this run is alive."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):  # a folder gone a moment (a network drive): the next beat
                os.utime(lock)

    threading.Thread(target=beat, name="bgremove-lock-heartbeat", daemon=True).start()
    return stop
