"""True streaming decoding of a Codec-ASR model from audio: fbank -> tokenizer -> token frontend -> chunks.

    python -m chunkssl.codec.asr_inference_streaming --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --wav-scp data/test/wav.scp [--segments ...] \\
        [--tokenizer-model exp/fsq_64k/valid.loss.best.pth] --chunk-ms 640 [--left-chunks -1] \\
        --piece-ms 40 [--beam-size 10 --ctc-weight 0.3 --length-bonus 0] [--realtime false] --output-dir DIR

Audio is fed in ``--piece-ms`` pieces to :func:`chunkssl.codec.streaming.codec_streamer`: incremental
fbank, the tokenizer run incrementally (its codes equal the offline ones; each waits for the
tokenizer's right context), the token frontend, the cached chunk encoder, CTC prefix beam search
with a partial after every chunk, attention rescoring at the end. The tokenizer defaults to the
``model_file`` recorded in the training codes' ``code_info.yaml``.

Outputs as ``chunkssl.bin.asr_inference_streaming``: ``text``, ``token_int``, ``stream.jsonl`` and
``timing.json`` (RTF, first-token latency, token emission delays; token audio ends from a CTC forced
alignment to the model's full-context posteriors of the offline codes), plus ``tokenizer_lookahead_ms``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from chunkssl.asr.decode import ctc_log_probs
from chunkssl.asr.io import SAMPLE_RATE, iter_audio
from chunkssl.bin.asr_inference_streaming import stream_utterance
from chunkssl.codec.decode import encode_codes
from chunkssl.codec.streaming import codec_streamer, load_code_tokenizer
from chunkssl.features import fbank
from chunkssl.fileio import DataError, atomic_open
from chunkssl.metrics.timing import (Partial, emission_delays, emission_times, real_time_factor, summarize,
                                     token_end_times)

FRAME_SHIFT_S = 0.04


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr_train_config", "--asr-train-config", required=True)
    p.add_argument("--asr_model_file", "--asr-model-file", required=True)
    p.add_argument("--tokenizer-model", "--tokenizer_model", default=None,
                   help="FSQ/RVQ tokenizer checkpoint (default: model_file of the training codes' code_info)")
    p.add_argument("--tokenizer-config", "--tokenizer_config", default=None)
    p.add_argument("--wav-scp", "--wav_scp", required=True)
    p.add_argument("--segments", default=None)
    p.add_argument("--chunk-ms", "--chunk_ms", type=int, default=640)
    p.add_argument("--left-chunks", "--left_chunks", type=int, default=-1)
    p.add_argument("--piece-ms", "--piece_ms", type=float, default=40.0, help="audio piece fed per call")
    p.add_argument("--beam-size", "--beam_size", type=int, default=10)
    p.add_argument("--ctc-weight", "--ctc_weight", type=float, default=0.3)
    p.add_argument("--length-bonus", "--length_bonus", type=float, default=0.0)
    p.add_argument("--realtime", type=_bool, default=False, help="pace the audio in real time")
    p.add_argument("--no-rescore", "--no_rescore", action="store_true", help="final = best CTC prefix")
    p.add_argument("--num-threads", "--num_threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--output-dir", "--output_dir", required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    """Stream every utterance and write text, token_int, stream.jsonl and timing.json."""
    from chunkssl.asr.model import load_asr

    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    if args.piece_ms <= 0:
        raise SystemExit(f"--piece-ms must be positive, got {args.piece_ms}")
    asr = load_asr(args.asr_train_config, args.asr_model_file)
    tokenizer = load_code_tokenizer(asr, args.tokenizer_model, args.tokenizer_config)
    streamer = codec_streamer(asr, tokenizer, args.chunk_ms, args.left_chunks, args.beam_size, args.ctc_weight,
                              length_bonus=args.length_bonus, rescore=not args.no_rescore)
    lookahead_ms = streamer.encoder.tokenizer.lookahead_ms
    piece = max(1, int(round(args.piece_ms * SAMPLE_RATE / 1000)))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts, token_ints, lines, per_utt = [], [], [], {}
    all_delays, first_latencies = [], []
    total_compute = total_audio = 0.0
    for utt, wave in iter_audio(args.wav_scp, args.segments):
        events, compute = stream_utterance(streamer, wave, piece, args.realtime)
        final = events[-1]
        audio_s = len(wave) / SAMPLE_RATE
        total_compute += compute
        total_audio += audio_s
        for e in events:
            lines.append(json.dumps({"utt": utt, **e.as_dict()}, ensure_ascii=False) + "\n")
        texts.append(f"{utt} {final.text}".rstrip() + "\n")
        token_ints.append(f"{utt} {' '.join(map(str, final.tokens))}".rstrip() + "\n")
        info = {"audio_s": audio_s, "compute_s": compute,
                "rtf": real_time_factor(compute, audio_s) if audio_s > 0 else None,
                "num_partials": len(events) - 1, "first_token_latency_s": None, "mean_emission_delay_s": None}
        if final.tokens:
            partials = [Partial(e.tokens, e.audio_s, e.wall_s) for e in events[:-1]]
            emitted = emission_times(partials, Partial(final.tokens, final.audio_s, final.wall_s))
            info["first_token_latency_s"] = emitted[0]
            first_latencies.append(emitted[0])
            feats = fbank(wave, SAMPLE_RATE) if wave.size >= 400 else torch.zeros(0, tokenizer.input_dim)
            if feats.shape[0] >= tokenizer.stack:
                codes, _ = tokenizer.tokenize(feats[None], torch.tensor([feats.shape[0]]))
                lp = ctc_log_probs(asr, encode_codes(asr, codes[0], None, None))
                try:
                    ends = token_end_times(lp, final.tokens, FRAME_SHIFT_S, blank=asr.model.blank_id)
                except ValueError as exc:  # too many tokens for the frames: no delay for this utterance
                    logging.warning("%s: no forced alignment (%s)", utt, exc)
                else:
                    delays = emission_delays(emitted, ends)
                    all_delays += delays
                    info["mean_emission_delay_s"] = sum(delays) / len(delays)
        per_utt[utt] = info
        logging.info("%s: %s", utt, final.text)
    with atomic_open(out / "text", "w") as f:
        f.writelines(texts)
    with atomic_open(out / "token_int", "w") as f:
        f.writelines(token_ints)
    with atomic_open(out / "stream.jsonl", "w") as f:
        f.writelines(lines)
    timing = {"input": "audio -> tokenizer codes", "chunk_ms": args.chunk_ms, "left_chunks": args.left_chunks,
              "piece_ms": args.piece_ms, "tokenizer_lookahead_ms": lookahead_ms,
              "clock": "realtime" if args.realtime else "simulated", "num_utts": len(per_utt),
              "audio_s": total_audio, "compute_s": total_compute,
              "rtf": real_time_factor(total_compute, total_audio) if total_audio > 0 else None,
              "first_token_latency_s": summarize(first_latencies),
              "token_emission_delay_s": summarize(all_delays), "utterances": per_utt}
    with atomic_open(out / "timing.json", "w") as f:
        json.dump(timing, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except DataError as err:
        raise SystemExit(f"asr_inference_streaming (codes): error: {err}") from None
