"""Command-line entry points, each runnable as ``python -m chunkssl.bin.<name>``."""
