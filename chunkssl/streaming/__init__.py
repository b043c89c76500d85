"""True streaming inference: incremental features (and, later, the chunk-by-chunk encoder and decoder)."""
