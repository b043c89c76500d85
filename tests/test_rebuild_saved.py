"""Saved models (SSL, ASR, FSQ, ST, asr2) rebuild from their own config.yaml in a fresh process, from any working
directory, after their recipe folder has moved (relative paths in the config are resolved from its folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, single_thread

# Builds a saved model strictly in a fresh process and prints its parameter count.
REBUILD = """
import sys
from chunkssl.checkpoint import build_from_files
kind, config, model = sys.argv[1:]
if kind == "fsq":
    from chunkssl.fsq.io import load_fsq_tokenizer
    built = load_fsq_tokenizer(model, config)
elif kind == "ssl":
    from chunkssl.ssl.task import ChunkSSLTask
    built, _ = build_from_files(ChunkSSLTask, config, model)
else:
    import chunkssl.espnet_glue
    from espnet2.tasks.asr import ASRTask
    built, _ = build_from_files(ASRTask, config, model)
print(sum(p.numel() for p in built.parameters()))
"""


def _rebuild(kind: str, config: Path, model: Path, cwd: Path) -> int:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", REBUILD, kind, str(config), str(model)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return int(r.stdout.split()[-1])


def _relative_run(root: Path, main, args: list[str]) -> None:
    """Run a training entry point inside ``root`` with paths relative to it, as a recipe does."""
    here = os.getcwd()
    os.chdir(root)
    try:
        with single_thread():
            main([a.replace(f"{root}/", "") for a in args])
    finally:
        os.chdir(here)


def _moved(root: Path, tmp_path: Path) -> Path:
    """The recipe folder moved elsewhere (the old one is gone)."""
    dest = tmp_path / "moved" / root.name
    shutil.copytree(root, dest)
    shutil.rmtree(root)
    return dest


def test_ssl_model_rebuilds_from_its_config_with_its_loss_groups(tmp_path):
    from chunkssl.bin import ssl_train
    from test_ssl_train import CONFIG, _args, _write_data

    root = tmp_path / "ssl"
    root.mkdir()
    _write_data(root)
    conf = dict(CONFIG, model_conf=dict(CONFIG["model_conf"], group_channels=1))  # loss groups != code groups
    (root / "conf.yaml").write_text(yaml.safe_dump(conf))
    _relative_run(root, ssl_train.main, _args(root, "exp", 1))
    saved = yaml.safe_load((root / "exp" / "config.yaml").read_text())
    assert saved["model_conf"]["group_channels"] == 1 and saved["model_conf"]["group_sizes"] == [1, 1, 1]
    assert not os.path.isabs(saved["code_info"])  # written as given: relative to the recipe
    root = _moved(root, tmp_path)
    assert _rebuild("ssl", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", tmp_path) > 0
    # the model folder alone, without the codes dir: the saved levels and groups are enough
    (root / "code_info.yaml").unlink()
    assert _rebuild("ssl", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/")) > 0


def test_asr_model_decodes_from_any_directory_after_the_recipe_moved(tmp_path):
    from chunkssl.bin import asr_train
    from tiny_asr import make_data, train_args

    root = tmp_path / "asr"
    make_data(root / "data", n_utts=6)
    _relative_run(root, asr_train.main, train_args(root / "data", root / "exp", 1))
    saved = yaml.safe_load((root / "exp" / "config.yaml").read_text())
    assert saved["normalize_conf"]["stats_file"] == "data/cmvn_stats.npz"
    root = _moved(root, tmp_path)
    params = _rebuild("asr", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/"))
    assert params > 0
    # the streaming API too, from another working directory
    from chunkssl.streaming.streamer import Streamer

    here = os.getcwd()
    os.chdir("/")
    try:
        streamer = Streamer.from_files(str(root / "exp" / "config.yaml"), str(root / "exp" / "1epoch.pth"), 320)
    finally:
        os.chdir(here)
    assert sum(p.numel() for p in streamer.asr.model.parameters()) == params


def test_fsq_tokenizer_rebuilds_in_a_fresh_process(tmp_path):
    import numpy as np

    from chunkssl.bin import fsq_train
    from test_fsq_cli import _write_feats

    rng = np.random.default_rng(0)
    mats = {f"utt{i:02d}": rng.normal(size=(int(rng.integers(30, 90)), 80)).astype(np.float32) for i in range(6)}
    root = tmp_path / "fsq"
    feats_scp = _write_feats(root / "fbank", mats)
    every = np.concatenate(list(mats.values())).astype(np.float64)
    np.savez(root / "fbank" / "cmvn_stats.npz", count=np.array(every.shape[0]), sum=every.sum(0),
             sum_square=(every ** 2).sum(0))
    shutil.copy(REPO / "conf" / "fsq" / "tiny.yaml", root / "tiny.yaml")
    args = ["--config", f"{root}/tiny.yaml", "--output_dir", f"{root}/exp", "--cmvn_stats",
            f"{root}/fbank/cmvn_stats.npz", "--max_epoch", "1", "--num_iters_per_epoch", "2"]
    for split in ("train", "valid"):
        args += [f"--{split}_data_path_and_name_and_type", f"{feats_scp},speech,kaldi_ark",
                 f"--{split}_shape_file", f"{root}/fbank/utt2num_frames"]
    _relative_run(root, fsq_train.main, args)
    root = _moved(root, tmp_path)
    assert _rebuild("fsq", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/")) > 0


# ST and asr2 (Codec-ASR): the model rebuilt strictly in a fresh process from the saved config.yaml gives
# the outputs of the model as training built it from its command line (same weights loaded into both).
OUTPUTS = """
import sys
import numpy as np
from chunkssl.checkpoint import build_from_files
from test_rebuild_saved import model_outputs, task_of
kind, config, model, inputs, out = sys.argv[1:]
built, _ = build_from_files(task_of(kind), config, model)
x = np.load(inputs)
np.savez(out, **model_outputs(built, x["speech"], x["lengths"]))
"""


def task_of(kind: str):
    """The ESPnet task class of a saved model kind (``st`` or ``asr2``), its chunkssl choices registered."""
    import chunkssl.espnet_glue  # noqa: F401  (chunk_conformer, the token frontend, kaldiio_ark)

    if kind == "st":
        from espnet2.tasks.st import STTask
        return STTask
    from espnet2.tasks.asr import ASRTask
    return ASRTask


def model_outputs(model, speech, lengths) -> dict:
    """Encoder output and the decoder's scores of a fixed target prefix (numpy), in eval mode."""
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        x = torch.tensor(np.asarray(speech))  # a copy: ESPnet's GlobalMVN normalises its input in place
        enc, enc_lens = model.encode(x, torch.from_numpy(np.asarray(lengths)))
        prefix = torch.tensor([[model.sos, 2, 3, 4]] * x.shape[0])
        dec, _ = model.decoder(enc, enc_lens, prefix, torch.full((x.shape[0],), prefix.shape[1]))
    return {"encoder": enc.numpy(), "decoder": dec.numpy()}


def _same_outputs_in_fresh_process(kind: str, root: Path, argv: list[str], inputs: dict, tmp_path: Path) -> None:
    """Build the model from the training command line (in ``root``), load the checkpoint strictly and
    compare its outputs with those of a fresh process that rebuilds it from config.yaml after the move."""
    import numpy as np

    from chunkssl.checkpoint import load_strict

    here = os.getcwd()
    os.chdir(root)
    try:
        task = task_of(kind)
        trained = load_strict(task.build_model(task.get_parser().parse_args(argv)), "exp/1epoch.pth")
        expected = model_outputs(trained, inputs["speech"], inputs["lengths"])
    finally:
        os.chdir(here)
    root = _moved(root, tmp_path)
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    out = tmp_path / "rebuilt.npz"
    r = subprocess.run([sys.executable, "-c", OUTPUTS, kind, str(root / "exp" / "config.yaml"),
                        str(root / "exp" / "1epoch.pth"), str(tmp_path / "inputs.npz"), str(out)],
                       cwd="/", env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = np.load(out)
    for name, value in expected.items():
        assert got[name].shape == value.shape and np.allclose(got[name], value, atol=1e-5), name
    assert np.abs(expected["decoder"]).max() > 0


def test_st_model_rebuilds_from_its_config_with_the_same_outputs(tmp_path):
    import kaldiio
    import numpy as np
    from espnet2.bin import tokenize_text

    from chunkssl.bin import st_train
    from chunkssl.st.bpe import train_bpe
    from test_st_simultaneous import CONFIG, SENTENCES

    root = tmp_path / "st"
    (root / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    feats = {u: rng.standard_normal((int(rng.integers(150, 260)), 80)).astype(np.float32) for u, _, _ in SENTENCES}
    kaldiio.save_ark(str(root / "data/feats.ark"), feats, scp=str(root / "data/feats.scp"))
    every = np.concatenate(list(feats.values())).astype(np.float64)
    np.savez(root / "data/cmvn_stats.npz", count=len(every), sum=every.sum(0), sum_square=(every ** 2).sum(0))
    (root / "data/shape").write_text("".join(f"{u} {len(f)},80\n" for u, f in feats.items()))
    for lang, col in (("en", 1), ("fr", 2)):
        text = root / f"data/text.{lang}"
        text.write_text("".join(f"{s[0]} {s[col]}\n" for s in SENTENCES), encoding="utf-8")
        with single_thread():
            train_bpe(text, root / lang / "bpe", vocab_size=40)
        tokenize_text.main(["--token_type", "bpe", "--bpemodel", str(root / lang / "bpe.model"), "--field", "2-",
                            "--input", str(text), "--output", str(root / lang / "tokens.txt"),
                            "--write_vocabulary", "true", "--add_symbol", "<blank>:0", "--add_symbol", "<unk>:1",
                            "--add_symbol", "<sos/eos>:-1", "--log_level", "WARNING"])
    (root / "conf.yaml").write_text(CONFIG)
    argv = ["--config", "conf.yaml", "--output_dir", "exp", "--ngpu", "0", "--input_size", "80",
            "--normalize_conf", "stats_file=data/cmvn_stats.npz", "--token_type", "bpe",
            "--bpemodel", "fr/bpe.model", "--token_list", "fr/tokens.txt", "--src_token_type", "bpe",
            "--src_bpemodel", "en/bpe.model", "--src_token_list", "en/tokens.txt", "--seed", "0",
            "--fold_length", "1500"]
    for split in ("train", "valid"):
        argv += [f"--{split}_data_path_and_name_and_type", "data/feats.scp,speech,kaldi_ark",
                 f"--{split}_data_path_and_name_and_type", "data/text.fr,text,text",
                 f"--{split}_data_path_and_name_and_type", "data/text.en,src_text,text",
                 f"--{split}_shape_file", "data/shape"]
    _relative_run(root, st_train.main, argv)
    speech = np.stack([feats["u1"][:150], feats["u2"][:150]])
    inputs = {"speech": speech, "lengths": np.array([150, 120])}
    _same_outputs_in_fresh_process("st", root, argv, inputs, tmp_path)


def test_asr2_model_rebuilds_from_its_config_with_the_same_outputs(tmp_path):
    import kaldiio
    import numpy as np

    from chunkssl.bin import asr_train
    from tiny_asr import CONFIG, LETTERS

    levels = [8, 5, 5, 5]
    root = tmp_path / "asr2"
    (root / "codes").mkdir(parents=True)
    (root / "codes/code_info.yaml").write_text(yaml.safe_dump({"tokenizer": "fsq", "groups": [levels],
                                                                "levels": levels}))
    rng = np.random.default_rng(0)
    codes = {f"utt{i}": rng.integers(0, levels, size=(int(rng.integers(20, 40)), len(levels))).astype(np.int16)
             for i in range(6)}
    with kaldiio.WriteHelper(f"ark,scp:{root}/codes/codes.ark,{root}/codes/codes.scp", write_function="numpy") as w:
        for utt, mat in codes.items():  # int16 in NPY payloads, as fsq_tokenize writes codes
            w(utt, mat)
    (root / "codes/shape").write_text("".join(f"{u} {len(c)},{len(levels)}\n" for u, c in codes.items()))
    (root / "text").write_text("".join(f"{u} {''.join(rng.choice(list(LETTERS), 3))}\n" for u in codes))
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *LETTERS, "<sos/eos>"]) + "\n")
    conf = {k: v for k, v in CONFIG.items() if k != "normalize"}
    conf["encoder_conf"] = dict(CONFIG["encoder_conf"], input_layer="linear")
    conf.update(frontend="token", frontend_conf={"embed_dim": 32, "specaug": {"num_time_mask": 1}},
                specaug=None, normalize=None, max_epoch=1, num_iters_per_epoch=1, batch_size=2)
    (root / "conf.yaml").write_text(yaml.safe_dump(conf))
    argv = ["--config", "conf.yaml", "--output_dir", "exp", "--ngpu", "0", "--token_list", "tokens.txt",
            "--frontend_conf", "code_info=codes/code_info.yaml"]
    for split in ("train", "valid"):
        argv += [f"--{split}_data_path_and_name_and_type", "codes/codes.scp,speech,kaldiio_ark",
                 f"--{split}_data_path_and_name_and_type", "text,text,text",
                 f"--{split}_shape_file", "codes/shape"]
    _relative_run(root, asr_train.main, argv)
    saved = yaml.safe_load((root / "exp/config.yaml").read_text())
    assert saved["frontend"] == "token" and saved["frontend_conf"]["code_info"] == "codes/code_info.yaml"
    speech = np.stack([codes["utt0"][:20], codes["utt1"][:20]]).astype(np.int64)
    inputs = {"speech": speech, "lengths": np.array([20, 15])}
    _same_outputs_in_fresh_process("asr2", root, argv, inputs, tmp_path)
