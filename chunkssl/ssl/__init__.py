"""Chunk SSL pre-training: the ESPnet model and task."""
