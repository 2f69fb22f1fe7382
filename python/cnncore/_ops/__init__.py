"""The ops, one module per family; ``cnncore.functional`` re-exports their public names."""
