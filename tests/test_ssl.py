"""SSL pieces: span masks, dynamic chunk draws, the SSL model's targets and batching, ASR loading."""

from __future__ import annotations

import pytest
import torch

from chunkssl.cada import build_layout
from chunkssl.chunking import ChunkSampler
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.masking import batch_span_masks, layout_replace, span_mask, spans_from_starts, utterance_keys
from chunkssl.ssl.model import ChunkSSLModel


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_spans_are_cut_at_the_chunk_end():
    offset = torch.arange(12) % 4  # chunks of 4 frames
    starts = torch.zeros(12, dtype=torch.bool)
    starts[[1, 6, 8]] = True
    mask = spans_from_starts(starts, offset, 3)
    # span at 1 covers 1-3; span at 6 covers 6-7 only (chunk ends at 7); span at 8 covers 8-10
    assert mask.nonzero().squeeze(1).tolist() == [1, 2, 3, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("length,chunk", [(23, 4), (40, 6), (9, 3)])
def test_span_mask_stays_in_copied_chunks(length, chunk):
    for seed in range(20):
        mask = span_mask(length, chunk, 0.3, 3, _gen(seed))
        assert not mask[:chunk].any()          # B1 has no extended copy
        assert mask.any()                      # at least one span
    rare = span_mask(length, chunk, 1e-9, 2, _gen(0))
    assert 1 <= int(rare.sum()) <= 2           # the forced span when no start was drawn


def test_span_mask_offline_masks_any_frame_and_one_chunk_utterance_masks_nothing():
    assert span_mask(12, None, 1.0, 2, _gen(0)).all()
    assert not span_mask(5, 8, 1.0, 2, _gen(0)).any()
    with pytest.raises(ValueError, match="mask_prob"):
        span_mask(5, 2, 0.0, 2, _gen(0))


def test_batch_masks_do_not_depend_on_batch_mates_or_padding():
    together = batch_span_masks(torch.tensor([30, 17]), [11, 22], 4, 0.2, 3, seed=5, step=7)
    alone = batch_span_masks(torch.tensor([17]), [22], 4, 0.2, 3, seed=5, step=7)
    assert torch.equal(together[1, :17], alone[0])
    assert not together[1, 17:].any()
    other_step = batch_span_masks(torch.tensor([30, 17]), [11, 22], 4, 0.2, 3, seed=5, step=8)
    assert not torch.equal(together, other_step)


def test_utterance_keys_ignore_padding_and_tell_utterances_apart():
    codes = torch.randint(0, 5, (2, 9, 3), generator=_gen(1))
    lengths = torch.tensor([9, 6])
    keys = utterance_keys(codes, lengths)
    padded = torch.cat([codes, torch.full((2, 4, 3), -1)], dim=1)
    assert utterance_keys(padded, lengths) == keys
    assert utterance_keys(codes[1:, :6], lengths[1:]) == keys[1:]
    assert keys[0] != keys[1]


def test_layout_replace_puts_masks_on_copies_only():
    layout = build_layout(torch.tensor([7, 5]), 2, None, True, 1)
    frame_mask = torch.zeros(2, 7, dtype=torch.bool)
    frame_mask[:, 3] = True
    frame_mask[1, 6] = True  # beyond utterance 2's length: must be ignored
    replace = layout_replace(frame_mask, layout, offline=False)
    # layout: base 0..6, E1 = 2,3 at 7,8; E2 = 4,5 at 9,10; E3 = 6 at 11
    assert replace[0].nonzero().squeeze(1).tolist() == [8]
    assert replace[1].nonzero().squeeze(1).tolist() == [8]
    offline = layout_replace(frame_mask, layout, offline=True)
    assert offline[0].nonzero().squeeze(1).tolist() == [3]


def test_chunk_sampler_is_seeded_in_range_and_resumable():
    conf = dict(chunk_range_ms=[160, 1280], full_context_prob=0.25, left_chunks=[-1, 2], seed=3)
    a, b = ChunkSampler(**conf), ChunkSampler(**conf)
    draws = [a() for _ in range(400)]
    assert draws == [b() for _ in range(400)]
    chunks = [c for c, _ in draws if c is not None]
    assert min(chunks) >= 4 and max(chunks) <= 32 and len(set(chunks)) > 20
    assert 0.18 < sum(c is None for c, _ in draws) / 400 < 0.32
    assert {left for _, left in draws} == {None, 2}
    assert [a.draw(i) for i in range(5)] == draws[:5]  # pure function of the index
    resumed = ChunkSampler(**conf)
    resumed.load_state_dict(a.state_dict())
    assert resumed() == b()
    assert ChunkSampler(**{**conf, "seed": 4}).draw(0) != a.draw(0) or \
        ChunkSampler(**{**conf, "seed": 4}).draw(1) != a.draw(1)
    fixed = ChunkSampler(chunk_sizes_ms=[320, 640])
    assert {fixed()[0] for _ in range(50)} == {8, 16}
    with pytest.raises(ValueError, match="multiple of the 40 ms"):
        ChunkSampler(chunk_sizes_ms=[100])
    with pytest.raises(ValueError, match="exactly one"):
        ChunkSampler()


def _model(**kw) -> ChunkSSLModel:
    torch.manual_seed(0)
    enc = ChunkConformerEncoder(20, 16, 2, 24, 2, 0.0, cnn_module_kernel=5)
    conf = dict(levels=[10, 10, 10], group_sizes=[1, 2], mask_prob=0.3, mask_length=2,
                dynamic_chunk={"chunk_sizes_ms": [120, 200], "full_context_prob": 0.0})
    conf.update(kw)
    return ChunkSSLModel(enc, **conf).double()


def _batch(lengths: list[int]) -> tuple[torch.Tensor, ...]:
    gen = _gen(sum(lengths))
    speech = torch.randn(len(lengths), max(lengths), 20, generator=gen, dtype=torch.float64)
    speech_lengths = torch.tensor(lengths)
    codes_lengths = speech_lengths // 4
    # each code spells its own frame index in decimal, so targets reveal which frames were used
    frames = torch.arange(int(codes_lengths.max()))
    digits = torch.stack([frames // 100, frames // 10 % 10, frames % 10], -1)
    codes = digits.expand(len(lengths), -1, -1).clone()
    return speech, speech_lengths, codes, codes_lengths


def test_targets_are_codes_of_copied_frames_only():
    model = _model(eval_chunk_ms=200).eval()  # 5-frame chunks
    seen = []
    original = model.predictor.forward
    model.predictor.forward = lambda hidden, codes: (seen.append(codes.clone()), original(hidden, codes))[1]
    speech, speech_lengths, codes, codes_lengths = _batch([120, 90])
    loss, stats, weight = model(speech, speech_lengths, codes, codes_lengths)
    frames = seen[0][:, 0] * 100 + seen[0][:, 1] * 10 + seen[0][:, 2]
    assert frames.numel() == int(weight) > 0
    assert frames.min() >= 5  # never B1, which has no copy
    assert frames.max() < 120 // 4
    assert torch.isfinite(loss) and float(stats["chunk_ms"]) == 200.0


def test_batch_loss_is_the_masked_frame_weighted_mean_of_its_parts():
    """What makes a distributed run match a single process: same draws, weight = masked frames."""
    model = _model().train()
    lengths = [130, 111, 97, 60]
    speech, speech_lengths, codes, codes_lengths = _batch(lengths)
    whole, _, w = model(speech, speech_lengths, codes, codes_lengths)
    parts = []
    for idx in ([0, 2], [1, 3]):
        model.chunk_sampler.num_draws.zero_()
        t = int(speech_lengths[idx].max())
        loss, _, weight = model(speech[idx, :t], speech_lengths[idx], codes[idx], codes_lengths[idx])
        parts.append((loss, weight))
    combined = sum(loss * weight for loss, weight in parts) / sum(weight for _, weight in parts)
    assert int(w) == sum(int(weight) for _, weight in parts)
    torch.testing.assert_close(whole, combined, rtol=1e-10, atol=1e-12)


def test_feats_and_codes_length_mismatch_is_reported():
    model = _model().eval()
    speech, speech_lengths, codes, codes_lengths = _batch([120, 90])
    with pytest.raises(ValueError, match="code frames"):
        model(speech, speech_lengths, codes, codes_lengths - 10)


@pytest.mark.parametrize("task", ["asr", "st"])
def test_pretrained_encoder_loads_into_an_espnet_asr_or_st_model(tmp_path, task):
    import chunkssl.espnet_glue  # noqa: F401
    from espnet2.tasks.asr import ASRTask
    from espnet2.tasks.st import STTask
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    encoder_conf = "{output_size: 16, attention_heads: 2, linear_units: 24, num_blocks: 2, cnn_module_kernel: 5}"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    if task == "asr":
        args = ASRTask.get_parser().parse_args([
            "--token_list", str(tokens), "--input_size", "20", "--encoder", "chunk_conformer",
            "--encoder_conf", encoder_conf, "--decoder", "none", "--model_conf", "ctc_weight=1.0",
        ])
        asr = ASRTask.build_model(args)
    else:
        args = STTask.get_parser().parse_args([
            "--token_list", str(tokens), "--input_size", "20", "--encoder", "chunk_conformer",
            "--src_token_list", str(tokens), "--encoder_conf", encoder_conf, "--decoder", "transformer",
            "--decoder_conf", "{attention_heads: 2, linear_units: 16, num_blocks: 1}",
        ])
        asr = STTask.build_model(args)
    ssl = _model().float()
    with torch.no_grad():
        for p in ssl.parameters():
            p.add_(1.0)  # make sure the loaded values differ from a fresh init
    path = tmp_path / "ssl.pth"
    torch.save(ssl.state_dict(), path)
    load_pretrained_model(f"{path}:encoder:encoder", asr, ignore_init_mismatch=False)
    for name, value in ssl.encoder.state_dict().items():
        assert torch.equal(asr.encoder.state_dict()[name], value), name
    feats = torch.randn(1, 60, 20)
    out, olens, _ = asr.encoder(feats, torch.tensor([60]))
    assert out.shape == (1, int(olens[0]), 16)


@pytest.mark.parametrize("kw", [{"cada": False}, {"full_softmax": True},
                                 {"dynamic_chunk": {"chunk_sizes_ms": [40], "full_context_prob": 1.0}}])
def test_model_variants_train(kw):
    model = _model(**kw).train()
    speech, speech_lengths, codes, codes_lengths = _batch([100, 80])
    loss, stats, weight = model(speech, speech_lengths, codes, codes_lengths)
    loss.backward()
    assert torch.isfinite(loss) and int(weight) > 0
    assert model.mask_feat.grad is not None and model.mask_feat.grad.abs().sum() > 0
    if "full_softmax" in kw:
        assert set(stats) >= {"acc_g0", "acc"} and "acc_g1" not in stats
