"""Neural-network building blocks (layers, containers, losses) with torch.nn's names."""

from . import functional  # noqa: F401
