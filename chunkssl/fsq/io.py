"""Loading tokenizers (trained FSQ, BEST-RQ from a config) and reading/writing code directories.

A code directory (written by ``chunkssl.bin.fsq_tokenize``) holds:

- ``codes.scp`` + ``codes.<job>.ark``: per utterance an integer matrix ``[T', channels]`` (int16 when
  every level fits, else int32; or float32 with ``--dtype float32``), kaldiio ark with NPY payloads;
- ``code_info.yaml``: tokenizer kind (``fsq``, ``rvq`` or ``bestrq``; an RVQ has one channel and one
  group of ``codebook_size`` per codebook), per-channel ``levels``, channel ``groups``, vocabulary sizes,
  ``frame_shift_ms`` and where the tokenizer came from;
- ``utt2num_frames``: token frames per utterance; ``skipped``: utterances left out (too short).
"""

from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np
import yaml

from chunkssl.checkpoint import load_strict, read_state
from chunkssl.fileio import DataError, atomic_open
from chunkssl.fsq.bestrq import BestRQTokenizer
from chunkssl.fsq.quantizer import _product
from chunkssl.fsq.tokenizer import FSQTokenizer, build_fsq_from_config
from chunkssl.saved_config import read_config, read_yaml_mapping

CODE_INFO = "code_info.yaml"
CODES_SCP = "codes.scp"


def load_fsq_tokenizer(model_file: str | os.PathLike, config_file: str | os.PathLike | None = None,
                       device: str = "cpu") -> FSQTokenizer:
    """Trained FSQ tokenizer from an ESPnet checkpoint (``config.yaml`` beside it unless given)."""
    model_file = Path(model_file)
    config_file = Path(config_file) if config_file else model_file.parent / "config.yaml"
    if not model_file.exists():
        raise DataError(f"{model_file}: FSQ model file not found (train with chunkssl.bin.fsq_train)")
    state = read_state(model_file)
    model = build_fsq_from_config(read_config(config_file))
    return load_strict(model, model_file, config_file, state).to(device).eval()


def read_bestrq_config(config_file: str | os.PathLike) -> dict:
    """The ``bestrq_conf`` mapping of a BEST-RQ config file (constructor arguments of BestRQTokenizer)."""
    data = read_yaml_mapping(Path(config_file), "BEST-RQ config")
    conf = data.get("bestrq_conf")
    if not isinstance(conf, dict):
        raise DataError(f"{config_file}: expected a 'bestrq_conf:' mapping (see conf/fsq/bestrq.yaml)")
    return dict(conf)


def load_bestrq_tokenizer(config_file: str | os.PathLike, cmvn_stats: str | os.PathLike,
                          device: str = "cpu") -> BestRQTokenizer:
    """Frozen BEST-RQ quantizer from its config and the training fbank's CMVN stats."""
    conf = read_bestrq_config(config_file)
    conf.pop("cmvn_stats", None)
    return BestRQTokenizer(**conf, cmvn_stats=cmvn_stats).to(device).eval()


def codes_dtype(levels: list[int], requested: str = "auto") -> np.dtype:
    """Storage dtype of codes: the smallest of int16/int32 that holds every level, unless requested."""
    top = max(levels) - 1
    if requested == "auto":
        return np.dtype(np.int16) if top <= np.iinfo(np.int16).max else np.dtype(np.int32)
    dtype = np.dtype(requested)
    if dtype.kind == "i" and top > np.iinfo(dtype).max:
        raise DataError(f"codes up to {top} do not fit {requested}; use --dtype auto or int32")
    if dtype.kind == "f" and top >= 2**24:
        raise DataError(f"codes up to {top} are not exact in {requested}; use an integer dtype")
    return dtype


def make_code_info(tokenizer: FSQTokenizer | BestRQTokenizer, source: dict, dtype: np.dtype) -> dict:
    """Description of a tokenizer's codes, written as ``code_info.yaml`` beside ``codes.scp``."""
    groups = tokenizer.code_groups
    return dict(
        tokenizer=tokenizer.quantizer_type if isinstance(tokenizer, FSQTokenizer) else "bestrq",
        levels=list(tokenizer.code_levels),
        groups=groups,
        vocab_size=_product(tokenizer.code_levels),
        group_vocab_sizes=[_product(g) for g in groups],
        frame_shift_ms=tokenizer.frame_shift_ms,
        stack=tokenizer.stack,
        input_dim=tokenizer.input_dim,
        dtype=str(dtype),
        **source,
    )


def write_code_info(out_dir: str | os.PathLike, info: dict) -> None:
    """Write ``code_info.yaml`` atomically."""
    with atomic_open(Path(out_dir) / CODE_INFO, "w", encoding="utf-8") as f:
        yaml.safe_dump(info, f, sort_keys=False)


def read_code_info(source: str | os.PathLike | dict) -> dict:
    """The package's one ``code_info.yaml`` reader: a code directory, its ``code_info.yaml`` or a mapping (copied).

    DataError, naming the file and what to do, when it is missing, not a mapping, has no per-group
    level lists under ``groups`` or ``levels`` that disagree with them.
    """
    if isinstance(source, dict):
        info, path = dict(source), "code_info"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / CODE_INFO
        if not path.is_file():
            raise DataError(f"{path}: code_info.yaml not found (chunkssl.bin.fsq_tokenize writes it beside "
                            f"codes.scp; is this a fsq_tokenize output dir?)")
        info = read_yaml_mapping(path, "code_info.yaml (rerun chunkssl.bin.fsq_tokenize to rewrite it)")
    groups = info.get("groups")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, list) and g for g in groups):
        raise DataError(f"{path}: not a code_info.yaml: expected 'groups:' as a list of per-group level lists, "
                        f"e.g. [[8, 5], [5, 5]] (rerun chunkssl.bin.fsq_tokenize to rewrite it)")
    flat = [int(v) for g in groups for v in g]
    if isinstance(info.get("levels"), list) and [int(v) for v in info["levels"]] != flat:
        raise DataError(f"{path}: 'levels' {info['levels']} disagree with the flattened 'groups' {groups}; "
                        f"rerun chunkssl.bin.fsq_tokenize to rewrite it")
    return info


def read_codes(code_dir_or_scp: str | os.PathLike) -> dict[str, np.ndarray]:
    """Lazy mapping utt -> int codes ``[T', channels]`` of a code directory or its ``codes.scp``."""
    path = Path(code_dir_or_scp)
    scp = path / CODES_SCP if path.is_dir() else path
    if not scp.is_file():
        raise DataError(f"{scp}: codes.scp not found (run chunkssl.bin.fsq_tokenize first)")
    return kaldiio.load_scp(str(scp))


def load_code_source(info: dict, device: str = "cpu") -> FSQTokenizer | None:
    """The FSQ/RVQ model a code directory was made with (for decoding codes), or None for BEST-RQ."""
    if info.get("tokenizer") not in ("fsq", "rvq"):
        return None
    return load_fsq_tokenizer(info["model_file"], info.get("config_file"), device)
