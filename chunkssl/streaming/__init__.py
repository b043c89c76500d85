"""True streaming inference: incremental fbank (``fbank``), cached chunk-by-chunk encoder (``encoder``)
and the ``Streamer`` API that ties them to the CTC prefix beam search and attention rescoring of
:mod:`chunkssl.search` (``streamer``); ``decode_set`` streams a whole wav.scp and writes its results."""
