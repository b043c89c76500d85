"""End to end on a tiny trained model: asr_train, model reload, streaming = simulated streaming, CLIs.

The data are synthetic "words" (tests/tiny_asr.py): each letter is a tone of its own pitch with short
pauses, so a model of a few thousand parameters learns them in a few epochs on one CPU thread and
emits real, varied tokens. The model is trained once per session (conftest.py, fixed seed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from chunkssl.features import fbank
from tiny_asr import CONFIG, SR, train_args

CHUNK_MS, LEFT = 320, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def trained(tiny_asr) -> dict:
    """A tiny model trained for 10 epochs by ``chunkssl.bin.asr_train`` (fixed seed; tests/tiny_asr.py)."""
    return tiny_asr


@pytest.fixture(scope="module")
def asr(trained):
    from chunkssl.asr.model import load_asr

    return load_asr(trained["config"], trained["model"])


def _wave(trained, utt: str) -> np.ndarray:
    wave, sr = sf.read(trained["data"] / "wav" / f"{utt}.wav", dtype="float32")
    assert sr == SR
    return wave


def _stream(streamer, wave: np.ndarray, piece: int = 480):
    events = []
    for start in range(0, len(wave), piece):
        events += streamer.accept(wave[start:start + piece], SR)
    return events, streamer.finalize()


def test_streaming_final_equals_simulated_streaming_decode(trained, asr):
    from chunkssl.asr.decode import decode_rescore
    from chunkssl.asr.model import chunk_frames
    from chunkssl.streaming.streamer import Streamer

    correct = 0
    for chunk_ms, left in [(CHUNK_MS, LEFT), (160, -1)]:
        streamer = Streamer(asr, chunk_ms, left, beam_size=5, ctc_weight=0.3)
        for i in range(8):
            utt = f"utt{i:03d}"
            wave = _wave(trained, utt)
            events, final = _stream(streamer, wave)
            offline = decode_rescore(asr, fbank(wave, SR), chunk_frames(chunk_ms), left, beam_size=5, ctc_weight=0.3)
            assert final.tokens == offline, (utt, chunk_ms)
            assert final.type == "final" and final.text == asr.text(offline)
            assert all(e.type == "partial" for e in events) and len(events) >= 1
            assert [e.audio_s for e in events] == sorted(e.audio_s for e in events)
            correct += final.text == trained["texts"][utt]
    assert correct >= 8, f"the tiny model should recognise most utterances, got {correct}/16"


def test_offline_cli_in_fresh_process_and_streaming_cli(trained, tmp_path):
    from chunkssl.bin import asr_inference, asr_inference_streaming

    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("".join((trained["data"] / "wav.scp").read_text().splitlines(True)[:6]))
    model = ["--asr_train_config", str(trained["config"]), "--asr_model_file", str(trained["model"])]
    common = ["--chunk-ms", str(CHUNK_MS), "--left-chunks", str(LEFT), "--beam-size", "5"]
    # a fresh process loads the saved model and decodes (simulated streaming, rescore)
    r = _run(["-m", "chunkssl.bin.asr_inference", *model, "--wav-scp", str(wav_scp), *common,
              "--decode-mode", "rescore", "--output-dir", str(tmp_path / "rescore")])
    assert r.returncode == 0, r.stderr[-3000:]
    asr_inference.main([*model, "--feats-scp", str(trained["data"] / "feats.scp"), "--chunk-ms", "full",
                        "--decode-mode", "joint", "--beam-size", "3", "--output-dir", str(tmp_path / "joint")])
    asr_inference_streaming.main([*model, "--wav-scp", str(wav_scp), *common, "--piece-ms", "40",
                                  "--output-dir", str(tmp_path / "stream")])
    rescore = (tmp_path / "rescore" / "text").read_text().splitlines()
    stream = (tmp_path / "stream" / "text").read_text().splitlines()
    assert stream == rescore and len(stream) == 6
    joint = dict(line.split(maxsplit=1) if " " in line else (line, "") for line in
                 (tmp_path / "joint" / "text").read_text().splitlines())
    assert len(joint) == 48
    assert sum(joint[u] == t for u, t in trained["texts"].items()) >= 24
    events = [json.loads(line) for line in (tmp_path / "stream" / "stream.jsonl").read_text().splitlines()]
    assert {e["type"] for e in events} == {"partial", "final"}  # one segment per utterance by default
    assert set(events[0]) == {"utt", "type", "segment", "audio_s", "wall_s", "text", "tokens"}
    finals = [e for e in events if e["type"] == "final"]
    assert [f"{e['utt']} {e['text']}".rstrip() for e in finals] == stream
    for e in events:
        assert e["wall_s"] >= e["audio_s"] - 1e-9  # simulated live clock: never before the audio arrived
    timing = json.loads((tmp_path / "stream" / "timing.json").read_text())
    assert timing["num_utts"] == 6 and 0 < timing["rtf"] < 5
    assert timing["first_token_latency_s"]["count"] >= 5
    assert timing["token_emission_delay_s"]["count"] >= 10
    assert -0.5 < timing["token_emission_delay_s"]["mean"] < 1.0
    offline_timing = json.loads((tmp_path / "joint" / "timing.json").read_text())
    assert offline_timing["num_utts"] == 48 and offline_timing["rtf"] > 0


def test_bad_input(trained, asr):
    from chunkssl.asr.decode import decode_rescore
    from chunkssl.streaming.streamer import Streamer

    streamer = Streamer(asr, CHUNK_MS, LEFT, beam_size=5)
    # finalize without audio, and empty audio: empty result, no crash
    assert streamer.finalize().tokens == ()
    assert streamer.accept(np.zeros(0, dtype=np.float32), SR) == []
    final = streamer.finalize()
    assert final.tokens == () and final.text == "" and final.audio_s == 0.0
    # shorter than one chunk (0.2 s < 0.32 s): no partial, decoded at finalize like the offline pass
    wave = _wave(trained, "utt003")[:3200]
    events, final = _stream(streamer, wave)
    assert events == []
    assert final.tokens == decode_rescore(asr, fbank(wave, SR), CHUNK_MS // 40, LEFT, beam_size=5)
    # too short even for one encoder frame
    assert _stream(streamer, wave[:500])[1].tokens == ()
    # silence only
    events, final = _stream(streamer, np.zeros(SR * 2, dtype=np.float32))
    assert final.type == "final" and len(events) >= 5
    # sample-rate mismatch: a clear error, then the streamer still works
    with pytest.raises(ValueError, match="8000 Hz"):
        streamer.accept(np.zeros(800, dtype=np.float32), 8000)
    streamer.reset()
    # reset mid-utterance drops it
    streamer.accept(_wave(trained, "utt001"), SR)
    streamer.reset()
    assert streamer.finalize().tokens == ()


def test_long_stream_has_bounded_state(trained, asr):
    from chunkssl.streaming.streamer import Streamer

    streamer = Streamer(asr, CHUNK_MS, LEFT, beam_size=5, rescore=False)
    words = [_wave(trained, f"utt{i:03d}") for i in range(10)]
    sizes = []
    for rep in range(6):  # about a minute of speech-like audio, one utterance
        for w in words:
            streamer.accept(w, SR)
        sizes.append(streamer.encoder.cache_sizes())
        assert len(streamer.search._beam) <= 5
    for s in sizes:  # the caches stay at their fixed sizes; the buffers hold less than one step
        assert s["kv"] == LEFT * CHUNK_MS // 40 and s["conv"] == 2, sizes
        assert s["fbank"] < 7 and s["pending"] < CHUNK_MS // 40, sizes
    assert streamer._enc_outs == []  # no rescoring: encoder outputs are not kept
    final = streamer.finalize()
    assert len(final.tokens) > 60


def test_bfloat16_streaming(trained):
    from chunkssl.streaming.streamer import Streamer

    streamer = Streamer.from_files(str(trained["config"]), str(trained["model"]), CHUNK_MS, LEFT, beam_size=5,
                                   dtype="bfloat16")
    assert next(streamer.asr.model.encoder.parameters()).dtype == torch.bfloat16
    right = 0
    for i in range(6):
        utt = f"utt{i:03d}"
        events, final = _stream(streamer, _wave(trained, utt))
        right += final.text == trained["texts"][utt]
    assert right >= 3


def test_int8_streaming(trained):
    """Dynamic int8 weights: every linear layer is quantized and the results stay those of float32."""
    from chunkssl.streaming.streamer import Streamer

    kwargs = dict(chunk_ms=CHUNK_MS, left_chunks=LEFT, beam_size=5)
    fp32 = Streamer.from_files(str(trained["config"]), str(trained["model"]), **kwargs)
    int8 = Streamer.from_files(str(trained["config"]), str(trained["model"]), dtype="int8", **kwargs)
    model = int8.asr.model
    assert not any(type(m) is torch.nn.Linear for part in (model.encoder, model.ctc, model.decoder)
                   for m in part.modules())
    same = sum(_stream(int8, _wave(trained, f"utt{i:03d}"))[1].text
               == _stream(fp32, _wave(trained, f"utt{i:03d}"))[1].text for i in range(6))
    assert same >= 5
    with pytest.raises(ValueError, match="dtype must be one of"):
        Streamer.from_files(str(trained["config"]), str(trained["model"]), dtype="int4", **kwargs)


def test_init_param_loads_an_ssl_encoder(trained, tmp_path):
    """``--init_param ssl.pth:encoder:encoder`` copies the pre-trained encoder into the ASR model."""
    from chunkssl.bin import asr_train
    from chunkssl.encoder import ChunkConformerEncoder

    conf = {k: v for k, v in CONFIG["encoder_conf"].items() if k != "dynamic_chunk"}
    torch.manual_seed(123)
    ssl_encoder = ChunkConformerEncoder(input_size=80, **conf)
    # an SSL checkpoint holds the encoder under "encoder." next to SSL-only parts
    ckpt = {f"encoder.{k}": v for k, v in ssl_encoder.state_dict().items()}
    ckpt["mask_emb"] = torch.zeros(conf["output_size"])
    torch.save(ckpt, tmp_path / "ssl.pth")
    frozen = dict(CONFIG, optim_conf={"lr": 0.0})  # no update: the saved encoder must be the SSL one
    (tmp_path / "conf.yaml").write_text(yaml.safe_dump(frozen))
    args = train_args(trained["data"], tmp_path / "exp", 1)
    args[args.index("--config") + 1] = str(tmp_path / "conf.yaml")
    threads = torch.get_num_threads()
    try:
        asr_train.main([*args, "--init_param", f"{tmp_path / 'ssl.pth'}:encoder:encoder"])
    finally:
        torch.set_num_threads(threads)
    saved = torch.load(tmp_path / "exp" / "1epoch.pth", map_location="cpu")
    for k, v in ssl_encoder.state_dict().items():
        assert torch.equal(saved[f"encoder.{k}"], v), k
    assert any(k.startswith("decoder.") for k in saved)


def test_streaming_cli_with_segments(trained, tmp_path):
    from chunkssl.bin import asr_inference_streaming

    wav = trained["data"] / "wav" / "utt000.wav"
    (tmp_path / "wav.scp").write_text(f"rec1 {wav}\n")
    (tmp_path / "segments").write_text("seg1 rec1 0.0 0.5\nseg2 rec1 0.5 -1\nseg3 rec1 0.0 0.01\n")
    asr_inference_streaming.main(["--asr_train_config", str(trained["config"]), "--asr_model_file",
                                  str(trained["model"]), "--wav-scp", str(tmp_path / "wav.scp"), "--segments",
                                  str(tmp_path / "segments"), "--chunk-ms", "160", "--piece-ms", "100",
                                  "--output-dir", str(tmp_path / "out")])
    lines = (tmp_path / "out" / "text").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["seg1", "seg2", "seg3"]
    assert lines[2] == "seg3"  # 10 ms: shorter than one fbank window, empty hypothesis
    timing = json.loads((tmp_path / "out" / "timing.json").read_text())
    assert timing["utterances"]["seg1"]["audio_s"] == pytest.approx(0.5)


def test_endpointing_commits_segments_and_bounds_memory(trained, asr):
    """Long stream with pauses: segments end at pauses, are rescored and dropped; the text survives."""
    from chunkssl.streaming.streamer import Streamer

    utts = [f"utt{i:03d}" for i in range(8)]
    pause = np.zeros(SR, dtype=np.float32)  # 1 s between utterances
    wave = np.concatenate([x for u in utts for x in (_wave(trained, u), pause)])
    streamer = Streamer(asr, CHUNK_MS, LEFT, beam_size=5, endpoint_ms=480)
    kept, texts = [], []
    for start in range(0, len(wave), 640):
        for event in streamer.accept(wave[start:start + 640], SR):
            texts.append(event.text)
        kept.append(sum(e.shape[0] for e in streamer._enc_outs))
    final = streamer.finalize()
    assert streamer.num_segments == 0  # reset by finalize
    # every utterance became its own segment: rescoring never holds more than one utterance + pause
    longest = max(len(_wave(trained, u)) for u in utts) / SR + 1.0
    assert max(kept) <= longest / 0.04 + CHUNK_MS // 40
    # partial texts only grow at the front: a committed segment is never revised
    committed = [t for t in texts if t]
    assert final.text.startswith(committed[0].split(" ")[0])
    ref = " ".join(trained["texts"][u] for u in utts).split()
    hyp = final.text.split()
    assert len(hyp) == len(ref) and sum(h == r for h, r in zip(hyp, ref)) >= len(ref) - 2, (hyp, ref)


def test_max_segment_cuts_without_pauses(trained, asr):
    from chunkssl.streaming.streamer import Streamer

    streamer = Streamer(asr, CHUNK_MS, LEFT, beam_size=5, max_segment_s=1.0)
    wave = np.concatenate([_wave(trained, f"utt{i:03d}") for i in range(6)])
    kept = []
    for start in range(0, len(wave), 640):
        streamer.accept(wave[start:start + 640], SR)
        kept.append(sum(e.shape[0] for e in streamer._enc_outs))
    segments = streamer.num_segments
    final = streamer.finalize()
    assert max(kept) < 25 + CHUNK_MS // 40 and segments >= len(wave) / SR // 1 - 1
    assert len(final.tokens) > 6
    with pytest.raises(ValueError, match="endpoint_ms"):
        Streamer(asr, CHUNK_MS, LEFT, endpoint_ms=0)


def test_encode_leaves_the_callers_fbank_unchanged(asr):
    """ESPnet's GlobalMVN normalises in place: a second encode of the same tensor must give the same frames."""
    from chunkssl.asr.decode import encode

    feats = torch.randn(200, 80) * 3 + 5
    before = feats.clone()
    first = encode(asr, feats, 16, -1)
    second = encode(asr, feats, 16, -1)
    assert torch.equal(feats, before)
    assert torch.equal(first, second)
