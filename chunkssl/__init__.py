"""chunkssl: one speech encoder for streaming and offline speech-to-text, pre-trained chunk by chunk."""

__version__ = "0.1.0"
