"""Search over CTC posteriors shared by offline and streaming decoding: incremental CTC prefix beam
search (``ctc_prefix``) and attention rescoring of its n-best (``rescoring``)."""
