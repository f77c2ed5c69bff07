"""errno-style errors of the Linux model: what a system call returns to user space."""
from __future__ import annotations

import errno
import os


class LinuxError(OSError):
    """A system call failed with ``-errno``; the message says which check refused it."""

    def __init__(self, err: int, message: str):
        super().__init__(err, f"{errno.errorcode.get(err, err)}: {message}")
        self.message = message

    @property
    def name(self) -> str:
        return errno.errorcode.get(self.errno, str(self.errno))


def einval(message: str) -> LinuxError:
    return LinuxError(errno.EINVAL, message)


def strerror(err: int) -> str:
    return os.strerror(err)
