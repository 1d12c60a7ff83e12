"""A child process's own peak RSS and CPU time, measured apart from the process starting it.

Linux counts in a child's peak RSS (``ru_maxrss``) the memory it shared with its parent before
``exec``: a child forked from a 550 MB benchmark (the scale sandbox's world) reports at least
550 MB, whatever it uses itself. So a bench starts each measured command through a small
launcher (a fresh interpreter, ~10 MB): the launcher starts the command as its own child, reaps
it with ``os.wait4`` and writes that child's rusage to a file. The command inherits the
standard streams the bench gives the launcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump({"code": os.waitstatus_to_exitcode(status), "utime": usage.ru_utime,
               "stime": usage.ru_stime, "maxrss_kb": usage.ru_maxrss, "wall": wall}, out)
"""


@dataclass(frozen=True)
class Usage:
    returncode: int
    wall_seconds: float  # from starting the command to reaping it (the launcher's own start-up
    # is not in it)
    cpu_seconds: float  # user + system
    peak_rss_kb: int


class Measured:
    """`subprocess.Popen` of `command` through the launcher; `wait()` gives its `Usage`."""

    def __init__(self, command: list[str], **popen: Any) -> None:
        handle, self._path = tempfile.mkstemp(prefix="peak-rss-", suffix=".json")
        os.close(handle)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, self._path, *command], **popen
        )

    def wait(self) -> Usage:
        self.process.wait()
        try:
            with open(self._path, encoding="utf-8") as file:
                data = json.load(file)
        finally:
            os.unlink(self._path)
        return Usage(data["code"], data["wall"], data["utime"] + data["stime"], data["maxrss_kb"])
