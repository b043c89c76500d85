"""Discrete-token tools for Codec-ASR: residual VQ, bitrate figures, and the token frontend.

Modules: ``rvq`` (residual VQ with k-means init and EMA codebooks, the RVQ bottleneck of the fbank
tokenizer), ``bitrate`` (bits per token / per second of FSQ and RVQ codes), ``specaug`` (token
SpecAugment masks), ``frontend`` (ESPnet ``AbsFrontend`` embedding codes for ASR, registered as
``--frontend token`` by ``chunkssl.espnet_glue``), ``decode`` (chunk-masked decoding of codes),
``streaming`` (incremental tokenizer and true streaming from audio), the entry points
``asr_inference`` and ``asr_inference_streaming`` (``python -m chunkssl.codec.<name>``, used by
``egs2/TEMPLATE/asr2/asr2.sh``), and ``results`` (WER beside input bitrate and storage). Only the
dependency-light modules are imported here, because ``chunkssl.fsq.tokenizer`` imports ``rvq`` (and
``python -m chunkssl.codec.bitrate`` runs that module).
"""

from chunkssl.codec.rvq import ResidualVQ

__all__ = ["ResidualVQ"]
