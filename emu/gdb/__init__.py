"""A GDB remote-serial-protocol stub for tzemu: worlds as threads, the whole platform stops."""
from emu.gdb.server import GdbKilled, GdbServer

__all__ = ["GdbServer", "GdbKilled"]
