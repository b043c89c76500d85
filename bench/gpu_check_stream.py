"""Streaming part of bench/gpu_check.py: streaming decoding on the device against the CPU.

Kept apart so each file stays one idea: gpu_check.py runs the training sections and the report, this
module the streaming encoder and decoder checks it calls (encoder outputs, chunk-masked equivalence,
final texts, RTF).
"""

from __future__ import annotations

import numpy as np
import torch

from chunkssl.asr.decode import encode as chunked_encode
from chunkssl.asr.decode import set_chunk_mask
from chunkssl.asr.model import LoadedASR, normalize_feats
from chunkssl.chunking import chunk_frames
from chunkssl.features import fbank
from chunkssl.streaming.encoder import StreamingEncoder
from chunkssl.streaming.streamer import Streamer

SR = 16000
CHUNK_MS = 640
ENC_RTOL = 1e-3  # streaming encoder outputs, device vs CPU and vs the chunk-masked pass (relative to max)


def voiced_wave(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A speech-like float32 waveform: harmonic syllables with moving pitch, pauses and a little noise."""
    out: list[np.ndarray] = []
    while sum(len(x) for x in out) < seconds * SR:
        n = int(rng.uniform(0.12, 0.35) * SR)
        t = np.arange(n) / SR
        f0 = rng.uniform(90, 230) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        weights = rng.uniform(0.1, 1.0, 8) / np.arange(1, 9)
        syl = sum(w * np.sin(k * phase) for k, w in enumerate(weights, 1)) * np.hanning(n)
        out += [0.3 * syl / np.abs(syl).max(), np.zeros(int(rng.uniform(0.02, 0.3) * SR))]
    wave = np.concatenate(out)[: int(seconds * SR)]
    return (wave + rng.normal(0, 0.003, wave.size)).astype(np.float32)


def stream_decode(asr: LoadedASR, waves: list[np.ndarray], beam: int) -> tuple[list[str], float]:
    """Final texts of true streaming decoding (640 ms pieces) and the compute real-time factor."""
    streamer = Streamer(asr, CHUNK_MS, -1, beam_size=beam, ctc_weight=0.3)
    texts, compute, audio = [], 0.0, 0.0
    piece = CHUNK_MS * SR // 1000
    for wave in waves:
        for start in range(0, len(wave), piece):
            streamer.accept(wave[start:start + piece], SR)
        texts.append(streamer.finalize().text)
        compute += sum(streamer.chunk_compute_s)
        audio += len(wave) / SR
    return texts, compute / audio


def streaming_outputs(asr: LoadedASR, feats: torch.Tensor) -> torch.Tensor:
    """Encoder outputs of the cached chunk-by-chunk encoder, fed 40 fbank frames at a time."""
    enc = StreamingEncoder(asr.model.encoder, chunk_frames(CHUNK_MS), -1)
    outs = [enc.accept(feats[i:i + 40]) for i in range(0, feats.shape[0], 40)] + [enc.finalize()]
    return torch.cat(outs).float().cpu()


def check_streaming(report, cpu_model: torch.nn.Module, dev_model: torch.nn.Module,
                    token_list: list[str], waves: list[np.ndarray], args, device: torch.device) -> dict:
    """Streaming on the device vs CPU: encoder outputs, texts; and streaming vs the chunk-masked pass."""
    from espnet2.text.token_id_converter import TokenIDConverter

    def loaded(model: torch.nn.Module) -> LoadedASR:
        return LoadedASR(model.eval(), token_list, None, TokenIDConverter(token_list=token_list), None)

    cpu_asr, dev_asr = loaded(cpu_model), loaded(dev_model.to(device))
    worst, worst_chunked = 0.0, 0.0
    for wave in waves:
        raw = fbank(wave, SR)
        # global MVN as the streamer applies it; copies, since ESPnet's GlobalMVN works in place
        feats = normalize_feats(cpu_asr.model, raw.clone())
        ref, out = streaming_outputs(cpu_asr, feats), streaming_outputs(dev_asr, feats)
        scale = float(ref.abs().max())
        worst = max(worst, float((ref - out).abs().max()) / scale)
        chunked = chunked_encode(dev_asr, raw.clone(), chunk_frames(CHUNK_MS), None).float().cpu()
        worst_chunked = max(worst_chunked, float((chunked - out).abs().max()) / scale)
    set_chunk_mask(dev_asr.model.encoder, None, None)
    ref_texts, cpu_rtf = stream_decode(cpu_asr, waves, args.beam)
    texts, rtf = stream_decode(dev_asr, waves, args.beam)
    same = sum(a == b for a, b in zip(ref_texts, texts))
    tokens = sum(len(t.split()) for t in texts)
    dev = device.type
    report.line("stream", f"{len(waves)} utterances ({sum(len(w) for w in waves) / SR:.1f} s), {CHUNK_MS} ms chunks, "
                          f"beam {args.beam}: RTF {rtf:.4f} on {dev}, {cpu_rtf:.4f} on cpu; {tokens} tokens "
                          f"(random weights); final texts identical in {same}/{len(waves)}")
    report.check("stream encoder outputs", worst <= ENC_RTOL,
                 f"cpu vs {dev}, max abs diff / max abs {worst:.2e} (tol {ENC_RTOL:.0e})")
    report.check(f"stream = chunk-masked full pass on {dev}", worst_chunked <= ENC_RTOL,
                 f"max abs diff / max abs {worst_chunked:.2e} (tol {ENC_RTOL:.0e})")
    # texts of random-weight models can part at near ties; close encoder outputs are the criterion
    return {"rtf": rtf, "cpu_rtf": cpu_rtf, "texts_identical": same, "utterances": len(waves),
            "enc_rel_diff": worst, "chunked_rel_diff": worst_chunked}
