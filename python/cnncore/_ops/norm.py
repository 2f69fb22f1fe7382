"""Filled in by the norm family."""

__all__ = []
