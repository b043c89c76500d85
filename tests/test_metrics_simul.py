"""AL and LAAL against values computed by hand with SimulEval's formulas (source 1000 ms, reference 4 words)."""

from __future__ import annotations

import pytest

from chunkssl.metrics.simul import (SimulInstance, average_lagging, computation_aware_delays, corpus_latency,
                                    length_adaptive_average_lagging, reference_length)


def test_hypothesis_as_long_as_reference():
    # oracle step = 1000 / 4 = 250 ms: (200 + 150 + 100 + 250) / 4
    d = [200, 400, 600, 1000]
    assert average_lagging(d, 1000, 4) == pytest.approx(175.0)
    assert length_adaptive_average_lagging(d, 1000, 4) == pytest.approx(175.0)


def test_hypothesis_longer_than_reference():
    d = [200, 400, 600, 800, 1000, 1000]
    # AL keeps the reference rate (step 250) and stops at the first delay reaching the source end (tau = 5):
    # (200 + 150 + 100 + 50 + 0) / 5 = 100, so over-generation lowers AL ...
    assert average_lagging(d, 1000, 4) == pytest.approx(100.0)
    # ... while LAAL uses max(6, 4) = 6 (step 1000/6): (200 + 233.33 + 266.67 + 300 + 333.33) / 5
    assert length_adaptive_average_lagging(d, 1000, 4) == pytest.approx(1333.3333 / 5, abs=1e-3)


def test_hypothesis_shorter_than_reference():
    d = [500, 1000]
    # both use the reference length 4 (step 250): (500 + 750) / 2
    assert average_lagging(d, 1000, 4) == pytest.approx(625.0)
    assert length_adaptive_average_lagging(d, 1000, 4) == pytest.approx(625.0)
    # without a reference AL uses the hypothesis length (step 500): (500 + 500) / 2
    assert average_lagging(d, 1000) == pytest.approx(500.0)
    assert average_lagging(d, 1000, 0) == pytest.approx(500.0)


def test_first_delay_beyond_source_end_is_returned_as_is():
    assert average_lagging([1200, 1300], 1000, 2) == 1200.0
    assert length_adaptive_average_lagging([1200], 1000, 2) == 1200.0


def test_invalid_inputs():
    with pytest.raises(ValueError, match="empty hypothesis"):
        average_lagging([], 1000, 3)
    with pytest.raises(ValueError, match="source length"):
        average_lagging([1.0], 0, 3)
    with pytest.raises(ValueError, match="decrease"):
        SimulInstance("u", 1000, (500.0, 400.0))
    with pytest.raises(ValueError, match="elapsed"):
        SimulInstance("u", 1000, (500.0,), (1.0, 2.0))


def test_computation_aware_and_corpus_mean():
    delays = [200, 400, 600, 1000]
    elapsed = computation_aware_delays(delays, [50, 100, 150, 200])
    assert elapsed == [250, 500, 750, 1200]
    a = SimulInstance("a", 1000, tuple(delays), tuple(elapsed), reference_length=4)
    b = SimulInstance("b", 1000, (500.0, 1000.0), (600.0, 1100.0), reference_length=4)
    empty = SimulInstance("c", 1000, (), (), reference_length=3)
    out = corpus_latency([a, b, empty])
    assert out["num_scored"] == 2 and out["skipped_empty"] == ["c"]
    assert out["AL"] == pytest.approx((175.0 + 625.0) / 2)
    assert out["LAAL"] == pytest.approx((175.0 + 625.0) / 2)
    # CA for "a": (250 + 250 + 250 + 450) / 4 = 300 (tau = 4: 750 < 1000 <= 1200); "b": (600 + 850) / 2 = 725
    assert out["AL_CA"] == pytest.approx((300.0 + 725.0) / 2)
    no_ca = corpus_latency([SimulInstance("a", 1000, tuple(delays), None, 4)])
    assert "AL_CA" not in no_ca and no_ca["AL"] == pytest.approx(175.0)
    assert corpus_latency([empty])["AL"] is None


def test_reference_length_units():
    assert reference_length(" Bonjour  le monde ") == 3
    assert reference_length("你好 世界", "char") == 4
