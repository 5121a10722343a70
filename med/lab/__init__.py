"""The Exchange lab: a simulated Exchange organisation with an EWS face, for tests and demos."""

from med.lab.lab import Lab

__all__ = ["Lab"]
