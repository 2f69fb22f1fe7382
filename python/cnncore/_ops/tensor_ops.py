"""Filled in by the tensor_ops family."""

__all__ = []
