"""FSQ fbank tokenizer (targets for Chunk SSL), the BEST-RQ baseline quantizer and code analysis.

Modules: ``quantizer`` (FSQ, presets, codes <-> index), ``rvq`` (residual VQ bottleneck), ``features``
(CMVN, stacking), ``tokenizer`` (conv ResNet autoencoder), ``bestrq`` (random-projection quantizer),
``task`` (ESPnet training task), ``io`` (loading tokenizers, code directories), ``analysis``
(utilisation, purity, PNMI), ``frontend`` (ESPnet frontend embedding codes for Codec-ASR) and
``specaug`` (its token SpecAugment).
"""

from chunkssl.fsq.quantizer import (FSQ, PRESETS, LevelsError, QuantizerOutput, codes_to_index, index_to_codes,
                                    resolve_levels)

__all__ = ["FSQ", "PRESETS", "LevelsError", "QuantizerOutput", "codes_to_index", "index_to_codes", "resolve_levels"]
