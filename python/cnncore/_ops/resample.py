"""Filled in by the resample family."""

__all__ = []
