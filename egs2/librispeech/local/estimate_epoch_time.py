"""Estimate the GPU time per epoch of a chunk conformer config from its training FLOPs (not a measurement).

    python local/estimate_epoch_time.py --task asr --config ../../../conf/asr/chunk_conformer_base.yaml \\
        --hours 100.6 --num-utts 28539

One utterance of the corpus's mean duration goes through forward + backward on the CPU under
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; elementwise work is not
counted). FLOPs per epoch = that count x the number of utterances; time = FLOPs / (peak x MFU) for
each ``--gpu`` and ``--mfu`` given. For SSL the count is averaged over several dynamic chunk draws,
since the CADA layout grows as chunks get smaller. Padding and data loading are left out, and
attention cost is taken at the mean length (it grows with the square of the length), so the figures
are a lower bound at the assumed utilisation.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets
GPUS = {"A100": 312.0, "H100": 989.0}


def _asr_model(config: Path, vocab: int, tmp: Path):
    import chunkssl.espnet_glue  # noqa: F401
    from espnet2.tasks.asr import ASRTask

    tokens = tmp / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", *[f"u{i}" for i in range(vocab - 3)], "<sos/eos>"]) + "\n")
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--token_list", str(tokens),
                                            "--input_size", "80", "--normalize", "none"])
    return ASRTask.build_model(args)


def _ssl_model(config: Path):
    from chunkssl.ssl.task import ChunkSSLTask

    args = ChunkSSLTask.get_parser().parse_args(["--config", str(config), "--input_size", "80", "--normalize",
                                                 "none", "--model_conf", "levels=[7,7,7,7,7,7,7,7]"])
    return ChunkSSLTask.build_model(args)


def train_flops(task: str, config: Path, seconds: float, tokens: int, vocab: int, draws: int) -> float:
    """FLOPs of one forward + backward pass on one utterance of ``seconds`` seconds (mean over draws)."""
    frames = int(seconds * 100)
    with tempfile.TemporaryDirectory() as tmp:
        model = _asr_model(config, vocab, Path(tmp)) if task == "asr" else _ssl_model(config)
    model.train()
    speech, lengths = torch.randn(1, frames, 80), torch.tensor([frames])
    if task == "asr":
        batch = {"text": torch.randint(2, vocab - 1, (1, tokens)), "text_lengths": torch.tensor([tokens])}
    else:
        code_frames = frames // 4
        batch = {"codes": torch.randint(0, 7, (1, code_frames, 8)), "codes_lengths": torch.tensor([code_frames])}
    total = 0.0
    for _ in range(draws):
        counter = FlopCounterMode(display=False)
        with counter:
            loss = model(speech=speech, speech_lengths=lengths, **batch)[0]
            loss.backward()
        total += counter.get_total_flops()
        model.zero_grad(set_to_none=True)
    return total / draws


def main() -> None:
    """Print FLOPs per utterance and per epoch, and the epoch time for each GPU and MFU."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["asr", "ssl"], required=True)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--hours", type=float, required=True, help="audio per epoch")
    p.add_argument("--num-utts", type=int, required=True, help="utterances per epoch")
    p.add_argument("--tokens-per-utt", type=int, default=40, help="ASR: BPE tokens of a mean utterance")
    p.add_argument("--vocab", type=int, default=5000, help="ASR: BPE units")
    p.add_argument("--draws", type=int, default=1, help="chunk draws to average (SSL: use several)")
    p.add_argument("--gpu", nargs="+", default=sorted(GPUS), choices=sorted(GPUS))
    p.add_argument("--mfu", nargs="+", type=float, default=[0.05, 0.1, 0.2],
                   help="assumed model FLOP utilisation (counted FLOPs over peak)")
    args = p.parse_args()
    torch.manual_seed(0)
    mean_s = args.hours * 3600 / args.num_utts
    per_utt = train_flops(args.task, args.config, mean_s, args.tokens_per_utt, args.vocab, args.draws)
    per_epoch = per_utt * args.num_utts
    print(f"{args.config.name}: {per_utt / 1e12:.3f} TFLOP per {mean_s:.1f} s utterance (forward + backward), "
          f"{per_epoch / 1e15:.1f} PFLOP per epoch of {args.hours:g} h")
    for gpu in args.gpu:
        for mfu in args.mfu:
            minutes = per_epoch / (GPUS[gpu] * 1e12 * mfu) / 60
            print(f"  1x {gpu} at MFU {mfu:.0%}: {minutes:.1f} min per epoch")


if __name__ == "__main__":
    main()
