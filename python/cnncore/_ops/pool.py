"""Filled in by the pool family."""

__all__ = []
