"""Filled in by the loss family."""

__all__ = []
