"""Filled in by the conv family."""

__all__ = []
