"""Backends run builds and app instances: `local` (processes on this machine) now, `kubernetes` later."""
