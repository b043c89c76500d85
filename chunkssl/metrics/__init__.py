"""Scoring: WER/CER (asr), streaming timing (timing), BLEU/chrF (st) and simultaneous latency (simul).

Definitions are written out in docs/metrics.md.
"""
