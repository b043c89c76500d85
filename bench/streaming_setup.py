"""Models, audio and pacing for ``bench/streaming.py``: our 30M streamer and ESPnet's peer, both paced.

Speed does not depend on training, but the search does depend on how many tokens come out, so both
random-weight models are *paced* to emit what a trained model would: one token per 320 ms of speech,
blank in the pauses (:class:`Pacer`). The full model computation still runs; the pacing only edits
its output scores (CTC posteriors, and the decoders' next-token scores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import chunkssl.espnet_glue  # noqa: E402,F401  (registers chunk_conformer)
from chunkssl.asr.model import LoadedASR  # noqa: E402
from chunkssl.chunking import FRAME_MS  # noqa: E402

SR = 16000
FRAME_S = FRAME_MS / 1000  # one encoder frame, in seconds
VOCAB = 5000
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


class TimedStreamer:
    """Timing around a paced streamer (``self.streamer``, ``self.state["t"]`` the pacer's frame counter)."""

    streamer = None
    state: dict

    def restart(self) -> None:
        """Start a new stream (and the pacing from its first frame)."""
        self.streamer.reset()
        self.state["t"] = 0

    def feed(self, piece: np.ndarray) -> tuple[float, bool]:
        """Compute seconds of one ``accept``, and whether it encoded a chunk."""
        t0 = time.perf_counter()
        chunk = bool(self.streamer.accept(piece))
        return time.perf_counter() - t0, chunk

    def finish(self) -> tuple[float, int]:
        """Compute seconds of ``finalize`` and the number of tokens in the final result."""
        t0 = time.perf_counter()
        final = self.streamer.finalize()
        return time.perf_counter() - t0, len(final.tokens)


def pace_ours(model: torch.nn.Module, pacer: Pacer) -> tuple[dict, list]:
    """Route our CTC head through the pacer, and make the decoder agree with the hypotheses it rescores.

    A random decoder prefers short hypotheses (every token costs about log V), so without this the
    rescoring would drop paced tokens; a trained decoder agrees with the right one. The decoder is
    steered by hooks on its embedding (which sees the tokens fed) and output layer, so both of its
    forward paths are paced. Returns the CTC frame counter to reset and the hook handles.
    """
    orig, state = model.ctc.log_softmax, {"t": 0, "ys_in": None}

    def paced(h: torch.Tensor) -> torch.Tensor:
        lp = orig(h).float()
        out = pacer.ctc(lp, state["t"]).to(lp.dtype)
        state["t"] += lp.shape[1]
        return out

    def remember(module, args):
        state["ys_in"] = args[0]

    def agree(module, args, logits):
        target = torch.roll(state["ys_in"], -1, dims=1)  # the token fed next is the one predicted here
        target[:, -1] = model.eos
        return logits.scatter_add(-1, target.unsqueeze(-1), torch.full_like(logits[..., :1], 50.0))

    model.ctc.log_softmax = paced
    hooks = [model.decoder.embed.register_forward_pre_hook(remember),
             model.decoder.output_layer.register_forward_hook(agree)]
    return state, hooks


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
