"""One run at a time in a run folder: ``<out>/.rnnlab-lock``, held with ``flock`` while a run trains there.

The lock is the kernel's, so a process that dies (even by SIGKILL) releases it and the next run simply
takes it; the file holds the holder's process id and host, which the refusal names.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from ..errors import UserError

NAME = ".rnnlab-lock"


class RunLock:
    """``with RunLock(out_dir):`` -- a UserError naming the running process if another run holds ``out_dir``."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / NAME
        self.handle = None

    def __enter__(self) -> RunLock:
        while True:
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise UserError(f"out {self.path.parent} is in use by a run that is still training ({holder}); "
                                "wait for it to end, or choose another --out", "out") from None
            except OSError:  # a file system without locks: run unguarded rather than not at all
                return self
            try:  # the holder may have removed the file between our open and our lock: lock the file in place
                same = os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.path.unlink(missing_ok=True)
            self.handle.close()  # closing releases the lock
            self.handle = None
