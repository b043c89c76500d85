"""Chunk conformer encoder and its building blocks."""

from chunkssl.encoder.chunk_conformer import ChunkConformerEncoder

__all__ = ["ChunkConformerEncoder"]
