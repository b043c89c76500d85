"""True streaming inference: incremental fbank (``fbank``), cached chunk-by-chunk encoder (``encoder``),
incremental CTC prefix beam search (``ctc_prefix``), attention rescoring (``rescoring``) and the
``Streamer`` API that ties them together (``streamer``)."""
