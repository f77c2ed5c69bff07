"""Bus masters other than the CPUs: every access they make goes through the TZC-400.

``DmaMaster`` is the common base (one NSAID, one filter, a fault log); ``TestMaster`` is a generic
master for tests and demos; ``DisplayController`` is the kmssink end that scans frames out.
"""
from emu.devices.display import DisplayController
from emu.devices.dma import DmaMaster, DmaStats, TestMaster

__all__ = ["DisplayController", "DmaMaster", "DmaStats", "TestMaster"]
