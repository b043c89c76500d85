"""Discrete-token tools for Codec-ASR: residual VQ, bitrate figures, and the token frontend.

Modules: ``rvq`` (residual VQ with k-means init and EMA codebooks, the RVQ bottleneck of the fbank
tokenizer), ``bitrate`` (bits per token / per second of FSQ and RVQ codes), ``specaug`` (token
SpecAugment masks), ``frontend`` (ESPnet ``AbsFrontend`` embedding codes for ASR; import it to use
``register_token_frontend``). Only the dependency-light modules are imported here, because
``chunkssl.fsq.tokenizer`` imports ``rvq`` (and ``python -m chunkssl.codec.bitrate`` runs that module).
"""

from chunkssl.codec.rvq import ResidualVQ

__all__ = ["ResidualVQ"]
