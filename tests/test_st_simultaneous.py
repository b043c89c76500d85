"""ST model end to end on tiny data: st_train builds and runs one step, the model reloads in a fresh
process, simultaneous decoding (local agreement and wait-k) never commits a token that depends on
audio not yet received, and the cached streaming encoder commits what re-encoding the prefix commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch

from tests.conftest import REPO, single_thread

# tiny tensors: with the default threads, OpenMP hand-off on a loaded 2-core machine costs 50x
pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCES = [
    ("u1", "the cat sleeps on the mat", "Le chat dort sur le tapis."),
    ("u2", "a dog runs in the park", "Un chien court dans le parc."),
    ("u3", "the bird sings at dawn", "L'oiseau chante à l'aube."),
    ("u4", "my friend reads a book", "Mon ami lit un livre."),
]

CONFIG = """\
encoder: chunk_conformer
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 2, cnn_module_kernel: 7,
               dynamic_chunk: {chunk_range_ms: [160, 640], full_context_prob: 0.25, left_chunks: [-1, 2]}}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
normalize: global_mvn
model_conf: {asr_weight: 0.3, mtlalpha: 1.0, report_bleu: false, report_cer: false, report_wer: false}
optim: adam
optim_conf: {lr: 0.001}
batch_type: folded
batch_size: 2
max_epoch: 1
num_iters_per_epoch: 1
num_workers: 0
num_att_plot: 0
best_model_criterion: [[valid, loss, min]]
keep_nbest_models: 1
"""


@pytest.fixture(scope="module")
def st_model(tmp_path_factory):
    """A tiny ST model trained for one step with ``chunkssl.bin.st_train`` on random fbank."""
    from espnet2.bin import tokenize_text

    from chunkssl.bin import st_train
    from chunkssl.st.bpe import train_bpe

    d = tmp_path_factory.mktemp("st")
    with single_thread():  # module scope: the function-scoped one_thread fixture does not cover it
        rng = np.random.default_rng(0)
        feats = {utt: rng.standard_normal((int(rng.integers(150, 260)), 80)).astype(np.float32)
                 for utt, _, _ in SENTENCES}
        kaldiio.save_ark(str(d / "feats.ark"), feats, scp=str(d / "feats.scp"))
        stacked = np.concatenate(list(feats.values()))
        np.savez(d / "cmvn_stats.npz", count=len(stacked), sum=stacked.sum(0), sum_square=(stacked ** 2).sum(0))
        (d / "shape").write_text("".join(f"{u} {len(f)},80\n" for u, f in feats.items()))
        for lang, col in (("en", 1), ("fr", 2)):
            (d / f"text.{lang}").write_text("".join(f"{s[0]} {s[col]}\n" for s in SENTENCES), encoding="utf-8")
            train_bpe(d / f"text.{lang}", d / lang / "bpe", vocab_size=40)
            # the token list as st.sh stage 3 makes it
            tokenize_text.main(["--token_type", "bpe", "--bpemodel", str(d / lang / "bpe.model"), "--field", "2-",
                                "--input", str(d / f"text.{lang}"), "--output", str(d / lang / "tokens.txt"),
                                "--write_vocabulary", "true", "--add_symbol", "<blank>:0", "--add_symbol", "<unk>:1",
                                "--add_symbol", "<sos/eos>:-1", "--log_level", "WARNING"])
        (d / "config.yaml").write_text(CONFIG)
        data = []
        for split in ("train", "valid"):
            data += [f"--{split}_data_path_and_name_and_type", f"{d}/feats.scp,speech,kaldi_ark",
                     f"--{split}_data_path_and_name_and_type", f"{d}/text.fr,text,text",
                     f"--{split}_data_path_and_name_and_type", f"{d}/text.en,src_text,text",
                     f"--{split}_shape_file", f"{d}/shape"]
        exp = d / "exp"
        st_train.main(["--config", str(d / "config.yaml"), "--output_dir", str(exp), "--ngpu", "0",
                       "--input_size", "80", "--normalize_conf", f"stats_file={d}/cmvn_stats.npz",
                       "--token_type", "bpe", "--bpemodel", f"{d}/fr/bpe.model", "--token_list", f"{d}/fr/tokens.txt",
                       "--src_token_type", "bpe", "--src_bpemodel", f"{d}/en/bpe.model",
                       "--src_token_list", f"{d}/en/tokens.txt", "--fold_length", "1500", "--seed", "0", *data])
    return d, exp, feats


def test_train_one_step_and_reload_in_fresh_process(st_model):
    d, exp, feats = st_model
    model = exp / "1epoch.pth"
    assert model.is_file() and (exp / "config.yaml").is_file()
    out = d / "simul"
    scp = d / "two.scp"  # two utterances keep the fresh process quick
    scp.write_text("".join(line + "\n" for line in (d / "feats.scp").read_text().splitlines()[:2]))
    # a fresh interpreter rebuilds the model from config.yaml (chunk_conformer registered by our CLI)
    proc = subprocess.run([sys.executable, "-m", "chunkssl.bin.st_simultaneous", "--config", str(exp / "config.yaml"),
                           "--model", str(model), "--feats-scp", str(scp), "--out-dir", str(out),
                           "--chunk-ms", "320", "--beam-size", "2", "--maxlenratio", "0.3"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    texts = dict(line.rstrip("\n").split(" ", 1) if " " in line else (line.strip(), "")
                 for line in (out / "text").read_text(encoding="utf-8").splitlines())
    assert set(texts) == {"u1", "u2"}
    for line in (out / "latency.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert len(rec["delays"]) == len(texts[rec["id"]].split())
        assert all(0 < d <= rec["source_length"] for d in rec["delays"])
        assert rec["delays"] == sorted(rec["delays"])
        assert all(e >= d for e, d in zip(rec["elapsed"], rec["delays"]))
    # the log is what score_st reads
    ref = d / "ref.fr"
    ref.write_text("".join(f"{u} {fr}\n" for u, _, fr in SENTENCES[:2]), encoding="utf-8")
    from chunkssl.bin import score_st
    assert score_st.main(["--ref", str(ref), "--hyp", str(out / "text"), "--latency-log",
                          str(out / "latency.jsonl"), "--out-dir", str(d / "score")]) == 0


def test_prefix_encoding_matches_full_chunked_encoding(st_model):
    from chunkssl.st.policy import fbank_frames_needed
    from chunkssl.st.translate import encode, load_speech2text, set_chunking

    d, exp, feats = st_model
    s2t = load_speech2text(str(exp / "config.yaml"), str(exp / "1epoch.pth"), beam_size=2)
    set_chunking(s2t, 4)
    x = feats["u1"]
    full = encode(s2t, x)
    for n in (4, 8, 12):
        part = encode(s2t, x[:fbank_frames_needed(n)])
        assert part.shape[0] == n
        torch.testing.assert_close(part, full[:n], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("wait_k", [None, (2, 1.0)], ids=["la", "waitk"])
def test_commits_never_depend_on_unreceived_audio(st_model, wait_k):
    """For each commit event at source time t, decoding the input truncated at t commits the same by then."""
    from chunkssl.st.policy import WaitK, chunk_schedule
    from chunkssl.st.translate import load_speech2text, set_chunking, translate_simultaneous

    d, exp, feats = st_model
    s2t = load_speech2text(str(exp / "config.yaml"), str(exp / "1epoch.pth"), beam_size=2, maxlenratio=0.2)
    chunk = 8
    set_chunking(s2t, chunk)
    policy = WaitK(*wait_k) if wait_k else None
    checked = committed_early = 0
    for utt in ("u1", "u2"):
        x = feats[utt]
        full = translate_simultaneous(s2t, x, chunk, policy)
        assert full.events[-1][1] == full.token_ids
        steps = chunk_schedule(len(x), chunk)
        assert [e[0] for e in full.events] == [s.source_ms for s in steps]
        committed_early += sum(len(e[1]) for e in full.events[:-1])
        for step, (t, tokens, final) in zip(steps, full.events):
            if final:
                continue
            if policy is not None:  # wait-k never runs ahead of its schedule
                assert len(tokens) <= policy.allowed(step.encoder_frames // chunk)
            cut = translate_simultaneous(s2t, x[:step.fbank_frames], chunk, policy)
            # every commit made before the end of the truncated input is identical ...
            assert cut.events[:-1] == [e for e in full.events if e[0] < t]
            assert cut.events[-1][0] == t
            # ... and what the full run had committed at t is part of the truncated run's output
            assert cut.token_ids[:len(tokens)] == tokens
            checked += 1
    assert checked >= 6  # u1, u2 have 36-64 encoder frames: at least 4 chunk boundaries each
    assert committed_early > 0, "no token was committed before the end: the test would prove nothing"


@pytest.mark.parametrize("chunk,left", [(4, -1), (3, 2)])
def test_cached_encoder_equals_reencoding_and_commits_the_same(st_model, chunk, left):
    from chunkssl.st.policy import chunk_schedule
    from chunkssl.st.translate import PrefixEncoder, load_speech2text, set_chunking, translate_simultaneous

    d, exp, feats = st_model
    s2t = load_speech2text(str(exp / "config.yaml"), str(exp / "1epoch.pth"), beam_size=2, maxlenratio=0.2)
    set_chunking(s2t, chunk, left)
    for utt in ("u1", "u3"):
        x = feats[utt]
        cached, again = PrefixEncoder(s2t, x, cached=True), PrefixEncoder(s2t, x, cached=False)
        for step in chunk_schedule(len(x), chunk):
            a = cached.encode_upto(step.fbank_frames, step.final)
            b = again.encode_upto(step.fbank_frames, step.final)
            assert a.shape == b.shape == (step.encoder_frames, 32)
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        fast = translate_simultaneous(s2t, x, chunk)  # the default is the cached encoder
        slow = translate_simultaneous(s2t, x, chunk, cached=False)
        assert fast.events == slow.events and fast.text == slow.text
    # the schedule's chunk must be the encoder's for the cache to apply
    with pytest.raises(ValueError, match="positive chunk"):
        set_chunking(s2t, -1)
        PrefixEncoder(s2t, feats["u1"], cached=True)


def test_wait_k_cli_writes_scoreable_logs(st_model):
    from chunkssl.bin import st_simultaneous

    d, exp, feats = st_model
    scp = d / "one.scp"
    scp.write_text((d / "feats.scp").read_text().splitlines()[2] + "\n")
    out = d / "waitk"
    assert st_simultaneous.main(["--config", str(exp / "config.yaml"), "--model", str(exp / "1epoch.pth"),
                                 "--feats-scp", str(scp), "--out-dir", str(out), "--chunk-ms", "160",
                                 "--beam-size", "1", "--maxlenratio", "0.3", "--policy", "waitk", "--wait-k", "3",
                                 "--token-rate", "12.5"]) == 0  # 2 tokens per 160 ms chunk
    record = json.loads((out / "events.jsonl").read_text(encoding="utf-8"))
    events = record["events"]
    counts = [len(committed) for _, committed, final in events if not final]
    # each event's partial is its committed prefix as text, at the same source time; the last is the output
    assert [ms for ms, _ in record["partials"]] == [e[0] for e in events]
    assert record["partials"][-1][1] == (out / "text").read_text(encoding="utf-8").split(" ", 1)[1].rstrip("\n")
    assert all(text == "" for (_, text), n in zip(record["partials"], counts) if n == 0)
    # nothing before 3 chunks, then at most 2 more tokens per chunk
    assert counts[:2] == [0, 0]
    assert all(n <= 2 * (i - 2) for i, n in enumerate(counts, start=1) if i >= 3)
    assert max(counts) > 0, "wait-k committed nothing before the end: the test would prove nothing"
    rec = json.loads((out / "latency.jsonl").read_text())
    assert rec["id"] == "u3" and len(rec["delays"]) == len((out / "text").read_text().split()) - 1
