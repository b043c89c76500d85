"""Codec-ASR: ASR on discrete tokenizer codes, from decoding to the results table.

Modules: ``bitrate`` (bits per token / per second of FSQ and RVQ codes), ``decode`` (chunk-masked
decoding of codes), ``streaming`` (incremental tokenizer and true streaming from audio), the entry points
``asr_inference`` and ``asr_inference_streaming`` (``python -m chunkssl.codec.<name>``, used by
``egs2/TEMPLATE/asr2/asr2.sh``), and ``results`` (WER beside input bitrate and storage). The model parts
live lower down: the residual VQ in ``chunkssl.fsq.rvq``, the token frontend (registered as
``--frontend token`` by ``chunkssl.espnet_glue``) in ``chunkssl.fsq.frontend`` and its SpecAugment in
``chunkssl.fsq.specaug``.
"""
