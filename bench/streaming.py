"""Benchmark true streaming ASR: our Streamer against ESPnet's Speech2TextStreaming, same audio, one run.

Both models have the size of ``conf/asr/chunk_conformer_30m.yaml`` (12-layer 256-dim conformer encoder,
6-layer transformer decoder, 5,000 tokens) with random weights: speed does not depend on training, but
the search does depend on how many tokens come out, so both models are *paced* to emit what a trained
model would (one token per 320 ms of speech, blank in the pauses; see :class:`Pacer`). The full model
computation still runs; the pacing only edits its output scores.

- ours: ``chunk_conformer`` + :class:`~chunkssl.streaming.streamer.Streamer` (incremental fbank, cached
  chunk encoder, incremental CTC prefix beam search, attention rescoring per segment), 640 ms chunks,
  left limit 4 chunks, audio fed in 40 ms pieces; float32 and bfloat16.
- peer: ESPnet ``contextual_block_conformer`` (block 32 frames, hop 16 = 640 ms, no look-ahead) with
  ``Speech2TextStreaming`` (joint CTC/attention online beam search), fed 640 ms pieces (its hop).

Audio: synthesised sentences (espeak-ng) separated by 0.4-1.2 s pauses, repeated to length.
Measured: RTF (compute seconds per audio second, ``finalize`` included) on a 60 s stream for both,
median per-chunk compute time over the first and the last 10 s, and for ours a long stream
(default 60 min) with per-chunk times around minute 10 and at the end and the resident memory (RSS)
after minutes 1, 10, 30 and 60.

Run: ``python bench/streaming.py [--threads 2] [--minutes 60] [--readme]`` (``--quick``: short smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import chunkssl.espnet_glue  # noqa: E402,F401  (registers chunk_conformer)
from chunkssl.asr.model import LoadedASR  # noqa: E402
from chunkssl.streaming.streamer import Streamer  # noqa: E402

SR = 16000
FRAME_S = 0.04
VOCAB = 5000
CHUNK_MS = 640
BEAM = 10
EMIT_EVERY = 8  # encoder frames between tokens in speech: 320 ms, about 3 tokens/s


# ---------------------------------------------------------------- audio and pacing
def make_audio(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stream of synthesised sentences with pauses, and a per-40 ms-frame "speech" mask."""
    from chunkssl.synth.corpus import plan_corpus, render

    rng = np.random.default_rng(seed)
    pieces, speech = [], []
    for plan in plan_corpus(30, seed)[:24]:
        pcm, info = render(plan, seed, noise_snr_db=30.0)
        wave = pcm.astype(np.float32) / 32768.0
        mask = np.zeros(len(wave), bool)
        mask[int(info.spans[0][1] * SR):int(info.spans[-1][2] * SR)] = True
        gap = int(rng.uniform(0.4, 1.2) * SR)
        pieces += [wave, rng.normal(0, 1e-3, gap).astype(np.float32)]
        speech += [mask, np.zeros(gap, bool)]
    one, one_mask = np.concatenate(pieces), np.concatenate(speech)
    reps = int(np.ceil(seconds * SR / len(one)))
    n = int(seconds * SR)
    wave, mask = np.tile(one, reps)[:n], np.tile(one_mask, reps)[:n]
    frame = int(FRAME_S * SR)
    frames = mask[: len(mask) // frame * frame].reshape(-1, frame).mean(1) > 0.5
    return wave, frames


class Pacer:
    """Which encoder frames emit a token, and which token: what a trained model would say when.

    A token every ``EMIT_EVERY`` frames inside speech, blank elsewhere; token ids cycle through the
    vocabulary so that no hypothesis repeats a token (ESPnet's online search stops a block on repeats).
    """

    def __init__(self, speech: np.ndarray):
        idx = np.arange(len(speech))
        self.emit = speech & (idx % EMIT_EVERY == 0)
        self.due = np.concatenate([[0], np.cumsum(self.emit)])  # tokens due after t frames

    def token(self, k: int) -> int:
        return 2 + (k * 7919) % (VOCAB - 3)

    def tokens_due(self, frames: int) -> int:
        return int(self.due[min(frames, len(self.emit))])

    def ctc(self, lp: torch.Tensor, start: int) -> torch.Tensor:
        """Peaky CTC log-posteriors ``[1, n, V]`` for frames ``start..start+n`` built over the model's own."""
        n = lp.shape[1]
        out = lp * 0.1  # the real scores stay as small differences: the search still sees V candidates
        out[0, :, 0] += 20.0
        frames = torch.arange(start, start + n)
        frames = frames[frames < len(self.emit)]
        rows = frames[torch.from_numpy(self.emit[frames.numpy()])]
        if rows.numel():
            tokens = torch.tensor([self.token(self.tokens_due(int(t))) for t in rows])
            out[0, rows - start, 0] -= 20.0
            out[0, rows - start, tokens] += 20.0
        return torch.log_softmax(out, dim=-1)


def pace_ours(model: torch.nn.Module, pacer: Pacer) -> dict:
    """Route our CTC head through the pacer, and make the decoder agree with the hypotheses it rescores.

    A random decoder prefers short hypotheses (every token costs about log V), so without this the
    rescoring would drop paced tokens; a trained decoder agrees with the right one. Returns the CTC
    frame counter to reset.
    """
    orig, state = model.ctc.log_softmax, {"t": 0}
    dec_forward = model.decoder.forward

    def paced(h: torch.Tensor) -> torch.Tensor:
        lp = orig(h).float()
        out = pacer.ctc(lp, state["t"]).to(lp.dtype)
        state["t"] += lp.shape[1]
        return out

    def agreeing(hs, hlens, ys_in, ys_lens, *args, **kwargs):
        logits, olens = dec_forward(hs, hlens, ys_in, ys_lens, *args, **kwargs)
        target = torch.roll(ys_in, -1, dims=1)  # the token fed next is the one predicted here
        target[:, -1] = model.eos
        return logits.scatter_add(-1, target.unsqueeze(-1), torch.full_like(logits[..., :1], 50.0)), olens

    model.ctc.log_softmax = paced
    model.decoder.forward = agreeing
    return state


def pace_peer(model: torch.nn.Module, pacer: Pacer) -> None:
    """Pace the peer's CTC like ours, and steer its decoder to the paced tokens and then to <eos>.

    ESPnet's online search ends a block when a hypothesis ends in <eos>, so <eos> once the tokens due
    so far are out is what a trained decoder does at the edge of the audio it has seen.
    """
    dec, eos, orig = model.decoder, model.eos, model.decoder.batch_score
    ctc_orig = model.ctc.log_softmax

    def paced_ctc(h: torch.Tensor) -> torch.Tensor:
        return pacer.ctc(ctc_orig(h).float(), 0).to(h.dtype)  # the scorer passes the whole buffer

    def paced(ys, states, xs, *args, **kwargs):
        logp, new_states = orig(ys, states, xs, *args, **kwargs)
        out = logp.clone()
        said, due = ys.shape[1] - 1, pacer.tokens_due(xs.shape[1])
        if said < due:
            out[:, eos] -= 50.0
            out[:, pacer.token(said)] += 50.0
        else:
            out[:, eos] += 50.0
        return out, new_states

    dec.batch_score = paced
    model.ctc.log_softmax = paced_ctc


# ---------------------------------------------------------------- models
def _token_list(tmp: Path) -> Path:
    path = tmp / "tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>"] + [f"t{i}" for i in range(VOCAB - 3)] + ["<sos/eos>"]) + "\n")
    np.savez(tmp / "cmvn.npz", count=np.array(100), sum=np.zeros(80), sum_square=np.full(80, 100.0))
    return path


def build_ours(tmp: Path, seed: int = 0) -> LoadedASR:
    """Our 30M model (conf/asr/chunk_conformer_30m.yaml) with random weights."""
    from espnet2.tasks.asr import ASRTask
    from espnet2.text.token_id_converter import TokenIDConverter

    tokens = _token_list(tmp)
    args = ASRTask.get_parser().parse_args([
        "--config", str(REPO / "conf/asr/chunk_conformer_30m.yaml"), "--input_size", "80",
        "--token_list", str(tokens), "--token_type", "word", "--normalize_conf", f"stats_file={tmp / 'cmvn.npz'}"])
    torch.manual_seed(seed)
    model = ASRTask.build_model(args).eval()
    token_list = tokens.read_text().split()
    return LoadedASR(model, token_list, None, TokenIDConverter(token_list), args)


def build_peer(tmp: Path, seed: int = 0):
    """ESPnet's contextual block conformer of the same size, in Speech2TextStreaming."""
    from espnet2.bin.asr_inference_streaming import Speech2TextStreaming
    from espnet2.tasks.asr import ASRTask

    ours = yaml.safe_load((REPO / "conf/asr/chunk_conformer_30m.yaml").read_text())
    enc = {k: v for k, v in ours["encoder_conf"].items() if k != "dynamic_chunk"}
    enc.update(block_size=32, hop_size=16, look_ahead=0, input_layer="conv2d", macaron_style=True,
               use_cnn_module=True)
    conf = {"encoder": "contextual_block_conformer", "encoder_conf": enc,
            "decoder": "transformer", "decoder_conf": ours["decoder_conf"],
            "frontend": "default", "frontend_conf": {"fs": SR, "n_fft": 512, "win_length": 400, "hop_length": 160},
            "normalize": "global_mvn", "model_conf": ours["model_conf"]}
    (tmp / "peer.yaml").write_text(yaml.safe_dump(conf))
    args = ASRTask.get_parser().parse_args([
        "--config", str(tmp / "peer.yaml"), "--token_list", str(_token_list(tmp)), "--token_type", "word",
        "--normalize_conf", f"stats_file={tmp / 'cmvn.npz'}"])
    torch.manual_seed(seed)
    model = ASRTask.build_model(args).eval()
    s2t = Speech2TextStreaming(asr_model=model, asr_train_args=args, beam_size=BEAM, ctc_weight=0.3,
                               token_type="word", nbest=1)
    return model, s2t


def params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


# ---------------------------------------------------------------- runs
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_ours(asr: LoadedASR, wave: np.ndarray, speech: np.ndarray, dtype: torch.dtype,
             checkpoints_min: tuple[float, ...] = ()) -> dict:
    """Stream ``wave`` through our Streamer in 40 ms pieces; times, tokens and RSS at checkpoints."""
    pacer = Pacer(speech)
    state = pace_ours(asr.model, pacer)
    streamer = Streamer(asr, CHUNK_MS, left_chunks=4, beam_size=BEAM, ctc_weight=0.3, dtype=dtype,
                        endpoint_ms=800, max_segment_s=30)
    streamer.accept(wave[:SR])  # warm-up
    streamer.finalize()
    state["t"] = 0
    piece, chunk_end, rss, chunk_times = int(0.04 * SR), [], {}, []
    marks = sorted((int(m * 60 * SR), m) for m in checkpoints_min)
    start = time.perf_counter()
    for i in range(0, len(wave), piece):
        t0 = time.perf_counter()
        if streamer.accept(wave[i:i + piece]):
            chunk_times.append(time.perf_counter() - t0)
            chunk_end.append((i + piece) / SR)
        while marks and i + piece >= marks[0][0]:
            rss[marks.pop(0)[1]] = rss_mb()
    segments = streamer.num_segments + 1
    final = streamer.finalize()
    total = time.perf_counter() - start
    del asr.model.ctc.log_softmax, asr.model.decoder.forward  # back to the classes' methods
    return {"rtf": total / (len(wave) / SR), "times": np.array(chunk_times), "ends": np.array(chunk_end),
            "tokens": len(final.tokens), "due": pacer.tokens_due(len(speech)), "rss": rss,
            "segments": segments, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_peer(model, s2t, wave: np.ndarray, speech: np.ndarray) -> dict:
    """Stream ``wave`` through Speech2TextStreaming in 640 ms pieces."""
    pacer = Pacer(speech)
    pace_peer(model, pacer)
    s2t(wave[:SR].copy(), is_final=True)  # warm-up
    piece, times, ends = int(CHUNK_MS / 1000 * SR), [], []
    start = time.perf_counter()
    for i in range(0, len(wave) - piece, piece):
        t0 = time.perf_counter()
        s2t(wave[i:i + piece].copy(), is_final=False)
        times.append(time.perf_counter() - t0)
        ends.append((i + piece) / SR)
    last = len(wave) - len(wave) % piece if len(wave) % piece else len(wave) - piece
    results = s2t(wave[last:].copy(), is_final=True)
    total = time.perf_counter() - start
    tokens = len(results[0][2]) if results else 0
    return {"rtf": total / (len(wave) / SR), "times": np.array(times), "ends": np.array(ends), "tokens": tokens,
            "due": pacer.tokens_due(len(speech))}


def window_ms(res: dict, lo: float, hi: float) -> float:
    """Median per-chunk compute (ms) of the chunks ending in [lo, hi) seconds of audio."""
    sel = res["times"][(res["ends"] >= lo) & (res["ends"] < hi)]
    return float(np.median(sel) * 1000) if sel.size else float("nan")


# ---------------------------------------------------------------- report
def report(args, ours_p: float, peer_p: float, short: dict, long: dict | None) -> str:
    n = args.short_s
    lines = [f"Command: `.venv/bin/python bench/streaming.py --threads {args.threads} --minutes {args.minutes:g}"
             f"{' --quick' if args.quick else ''}`; machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads; load average at start "
             f"{args.load:.2f}.", "",
             f"Models: ours {ours_p:.1f}M parameters, peer {peer_p:.1f}M. {n:g} s stream, chunk/hop 640 ms, beam {BEAM}.",
             "", "| system | RTF | per-chunk ms, first 10 s | per-chunk ms, last 10 s | last / first | tokens (paced) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, res in short.items():
        first, last = window_ms(res, 0, 10), window_ms(res, n - 10, n + 1)
        lines.append(f"| {name} | {res['rtf']:.4f} | {first:.1f} | {last:.1f} | {last / first:.2f} | "
                     f"{res['tokens']} ({res['due']}) |")
    peer = short.get("ESPnet Speech2TextStreaming (float32)")
    ours = short.get("chunkssl Streamer (float32)")
    if peer and ours:
        lines += ["", f"Speed-up over the peer on the {n:g} s stream: {peer['rtf'] / ours['rtf']:.1f}x (float32)."]
    if long:
        m = args.minutes
        first, tenth = window_ms(long, 0, 10), window_ms(long, 590, 600)
        end = window_ms(long, m * 60 - 10, m * 60 + 1)
        rss = ", ".join(f"min {k:g}: {v:.0f} MB" for k, v in sorted(long["rss"].items()))
        lines += ["", f"Long stream (ours, float32, {m:g} min, endpoint 800 ms, segments of at most 30 s): "
                  f"RTF {long['rtf']:.4f}; per-chunk ms first 10 s {first:.1f}, last 10 s of minute 10 "
                  f"{tenth:.1f} (ratio {tenth / first:.2f}), last 10 s {end:.1f} (ratio {end / first:.2f}); "
                  f"{long['segments']} segments, {long['tokens']} tokens ({long['due']} paced).",
                  f"Resident memory: {rss}; peak {long['peak_mb']:.0f} MB."]
    return "\n".join(lines)


def update_readme(table: str) -> None:
    path = REPO / "bench/README.md"
    text = path.read_text()
    head = "## Streaming ASR vs ESPnet Speech2TextStreaming (`bench/streaming.py`)"
    begin, end = "<!-- streaming:begin -->", "<!-- streaming:end -->"
    block = f"{begin}\n{table}\n{end}"
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n{head}\n\n{block}\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--minutes", type=float, default=60.0, help="length of the long stream (ours only)")
    p.add_argument("--short-s", type=float, default=60.0, help="stream length for the side-by-side RTF")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 s and 2 min streams")
    p.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = p.parse_args()
    if args.quick:
        args.short_s, args.minutes = 20.0, 2.0
    args.load = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        asr = build_ours(tmp)
        peer_model, s2t = (None, None) if args.skip_peer else build_peer(tmp)
        wave, speech = make_audio(max(args.short_s, args.minutes * 60))
        n = int(args.short_s * SR)
        short_wave, short_speech = wave[:n], speech[: n // int(FRAME_S * SR)]
        short = {}
        for dtype, name in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
            short[f"chunkssl Streamer ({name})"] = res = run_ours(asr, short_wave, short_speech, dtype)
            print(f"ours {name}: RTF {res['rtf']:.4f}, {res['tokens']} tokens", flush=True)
        asr.model.to(torch.float32)
        if s2t is not None:
            short["ESPnet Speech2TextStreaming (float32)"] = res = run_peer(peer_model, s2t, short_wave, short_speech)
            print(f"peer: RTF {res['rtf']:.4f}, {res['tokens']} tokens", flush=True)
        marks = tuple(m for m in (1, 10, 30, 60) if m <= args.minutes) + (args.minutes,)
        long = run_ours(asr, wave, speech, torch.float32, marks) if args.minutes > 0 else None
        table = report(args, params(asr.model), params(peer_model) if peer_model is not None else float("nan"),
                       short, long)
    print(table)
    if args.readme:
        update_readme(table)


if __name__ == "__main__":
    main()
