"""ASR training on raw audio (asr.sh --feats-type raw): ESPnet's ASR model with the kaldi_fbank frontend gives
the loss the same model gives on the dumped fbank, on real recordings (so either decodes with the same fbank)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import chunkssl.espnet_glue  # noqa: F401
from conftest import REPO, real_speech_dir


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("asr_raw")
    data = real_speech_dir(root, num_lt=4, num_fsdd=2)
    utts = [line.split()[0] for line in (data / "utt2spk").read_text().splitlines()]
    (data / "text").write_text("".join(f"{u} {'AB' if i % 2 else 'BA A'}\n" for i, u in enumerate(utts)))
    for out, extra in (("fbank", []), ("raw", ["--raw"])):
        subprocess.run([sys.executable, "-m", "chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir",
                        str(root / out), *extra], check=True, capture_output=True)
    tokens = root / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\nA\nB\n<space>\n<sos/eos>\n")
    return dict(root=root, tokens=tokens)


def _model_and_batch(dumps: dict, raw: bool):
    from espnet2.tasks.asr import ASRTask
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    root = dumps["root"]
    d = root / ("raw" if raw else "fbank")
    speech = (f"{d}/audio.scp", "speech", "audio_16000") if raw else (f"{d}/feats.scp", "speech", "kaldi_ark")
    argv = ["--config", str(REPO / "conf/asr/chunk_conformer_tiny.yaml"), "--token_type", "char",
            "--token_list", str(dumps["tokens"]), "--normalize_conf", f"stats_file={root / 'fbank/cmvn_stats.npz'}"]
    argv += ["--frontend", "kaldi_fbank", "--frontend_conf", "fs=16000"] if raw else ["--input_size", "80"]
    args = ASRTask.get_parser().parse_args(argv)
    torch.manual_seed(7)
    model = ASRTask.build_model(args)
    ds = ESPnetDataset([speech, (f"{d}/text", "text", "text")],
                       preprocess=ASRTask.build_preprocess_fn(args, train=True))
    keys = sorted(ds.loader_dict["speech"].keys())
    _, batch = CommonCollateFn(int_pad_value=-1)([ds[k] for k in keys])
    return model, batch


def test_asr_loss_on_raw_audio_equals_the_loss_on_dumped_fbank(dumps):
    raw_model, raw_batch = _model_and_batch(dumps, raw=True)
    fb_model, fb_batch = _model_and_batch(dumps, raw=False)
    assert raw_batch["speech"].dim() == 2 and fb_batch["speech"].dim() == 3
    assert set(raw_model.state_dict()) == set(fb_model.state_dict())  # the frontend adds no weights
    losses = []
    for model, batch in ((raw_model, raw_batch), (fb_model, fb_batch)):
        model.eval()  # no dropout; the chunk is the model's eval chunking
        with torch.no_grad():
            loss, stats, _ = model(**batch)
        losses.append((float(loss), float(stats["loss_ctc"])))
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_a_raw_trained_model_decodes_fbank_once_its_frontend_is_dropped(dumps):
    from chunkssl.frontend import KaldiFbankFrontend, drop_fbank_frontend

    model, batch = _model_and_batch(dumps, raw=True)
    model.eval()
    assert isinstance(model.frontend, KaldiFbankFrontend)
    with torch.no_grad():
        enc_audio, lens_audio = model.encode(batch["speech"], batch["speech_lengths"])
        fbank, fbank_lens = KaldiFbankFrontend()(batch["speech"], batch["speech_lengths"])
        drop_fbank_frontend(model)
        assert model.frontend is None
        enc_fbank, lens_fbank = model.encode(fbank, fbank_lens)
    assert torch.equal(lens_audio, lens_fbank)
    assert torch.allclose(enc_audio, enc_fbank, atol=1e-5)
