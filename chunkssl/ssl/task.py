"""ESPnet task for Chunk SSL pre-training (data: fbank ``speech`` and FSQ ``codes``).

Typical data options::

    --train_data_path_and_name_and_type dump/fbank/train/feats.scp,speech,kaldi_ark
    --train_data_path_and_name_and_type dump/codes/train/codes.scp,codes,kaldiio_ark
    --code_info dump/codes/train/code_info.yaml

``--code_info`` supplies the FSQ levels and channel groups of the loss; they are copied into
``model_conf`` so the saved ``config.yaml`` rebuilds the model on its own.

Raw audio and online targets (nothing dumped but the manifests)::

    --frontend kaldi_fbank --frontend_conf fs=16000
    --train_data_path_and_name_and_type dump/raw/train/audio.scp,speech,audio_16000
    --target_tokenizer exp/fsq_6m/valid.loss.best.pth      # or conf/fsq/bestrq.yaml with
    --target_cmvn_stats dump/raw/train/cmvn_stats.npz      # (BEST-RQ's normalisation)

The frozen tokenizer is part of the model (``targets.*`` in its checkpoints); its levels and groups
replace ``--code_info``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN
from espnet2.tasks.abs_task import AbsTask
from espnet2.torch_utils.initialize import initialize
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.trainer import Trainer
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer and kaldiio_ark)
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.fileio import DataError
from chunkssl.frontend import KaldiFbankFrontend
from chunkssl.fsq.io import load_bestrq_tokenizer, load_fsq_tokenizer, read_code_info
from chunkssl.ssl.model import DEFAULT_DYNAMIC_CHUNK, ChunkSSLModel

frontend_choices = ClassChoices("frontend", classes=dict(kaldi_fbank=KaldiFbankFrontend), type_check=AbsFrontend,
                                default=None, optional=True)
normalize_choices = ClassChoices("normalize", classes=dict(global_mvn=GlobalMVN, utterance_mvn=UtteranceMVN),
                                 type_check=AbsNormalize, default=None, optional=True)
specaug_choices = ClassChoices("specaug", classes=dict(specaug=SpecAug), type_check=AbsSpecAug,
                               default=None, optional=True)
encoder_choices = ClassChoices("encoder", classes=dict(chunk_conformer=ChunkConformerEncoder),
                               type_check=AbsEncoder, default="chunk_conformer")


def loss_groups(num_channels: int, group_channels: int) -> list[int]:
    """Channels per softmax group when consecutive channels are grouped ``group_channels`` at a time."""
    if group_channels < 1:
        raise ValueError(f"model_conf group_channels must be >= 1, got {group_channels}")
    full, rest = divmod(num_channels, group_channels)
    return [group_channels] * full + ([rest] if rest else [])


def levels_from_code_info(path: str | Path) -> tuple[list[int], list[int]]:
    """``(levels per channel, channels per group)`` from a ``code_info.yaml`` of fsq_tokenize."""
    groups = read_code_info(path)["groups"]
    return [int(v) for g in groups for v in g], [len(g) for g in groups]


def _default_model_conf() -> dict:
    conf = get_default_kwargs(ChunkSSLModel)
    for built_by_the_task in ("normalize", "specaug", "frontend", "targets"):
        conf.pop(built_by_the_task, None)
    conf["dynamic_chunk"] = dict(DEFAULT_DYNAMIC_CHUNK)
    return conf


class ChunkSSLTask(AbsTask):
    """Chunk SSL pre-training on ESPnet's trainer (checkpoints, resume, DDP, tensorboard)."""

    num_optimizers: int = 1
    class_choices_list = [frontend_choices, normalize_choices, specaug_choices, encoder_choices]
    trainer = Trainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        """Task options: input size, code_info, init and the model configuration."""
        group = parser.add_argument_group("Task related")
        group.add_argument("--input_size", type=int, default=80,
                           help="Feature dimension of speech (with --frontend: the frontend's)")
        group.add_argument("--target_tokenizer", type=str_or_none, default=None,
                           help="online targets: a trained FSQ tokenizer (<exp>/valid.loss.best.pth, its "
                                "config.yaml beside it) or a BEST-RQ config (conf/fsq/bestrq.yaml); the "
                                "batches then need no codes")
        group.add_argument("--target_cmvn_stats", type=str_or_none, default=None,
                           help="BEST-RQ online targets: cmvn_stats.npz of the training fbank")
        group.add_argument("--code_info", type=str_or_none, default=None,
                           help="code_info.yaml from fsq_tokenize: FSQ levels and groups for the loss "
                                "(or give model_conf levels/group_sizes)")
        group.add_argument("--init", type=lambda x: str_or_none(x.lower()), default=None,
                           choices=["xavier_uniform", "xavier_normal", "kaiming_uniform",
                                    "kaiming_normal", None],
                           help="The initialization method")
        group.add_argument("--model_conf", action=NestedDictAction,
                           default=_default_model_conf(),
                           help="Keyword arguments of ChunkSSLModel")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]
    ]:
        """Pad features with 0 and codes with -1 (never read: lengths bound every use)."""
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        """No preprocessing: features and codes are used as stored."""
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        """``speech`` (fbank, or audio with a frontend)."""
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        """``codes`` (dumped targets; without them the target tokenizer makes them)."""
        return ("codes",)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ChunkSSLModel:
        """Build normalisation, SpecAug, the chunk conformer and the SSL model from ``args``."""
        model_conf = dict(args.model_conf)
        targets = build_targets(args)
        code_info = getattr(args, "code_info", None)
        # a saved config rebuilds from its own levels when the codes dir is not beside it any more
        if code_info and (Path(code_info).is_file() or not model_conf.get("levels")):
            levels, group_sizes = levels_from_code_info(code_info)
            model_conf["levels"], model_conf["group_sizes"] = levels, group_sizes
        elif targets is not None:
            groups = targets.code_groups
            model_conf["levels"], model_conf["group_sizes"] = [v for g in groups for v in g], [len(g) for g in groups]
        group_channels = model_conf.get("group_channels")
        if group_channels and model_conf.get("levels"):
            # The tokenizer's own grouping can be one group of millions of classes (the 6m preset):
            # the loss instead cuts the channels into softmax groups of a fixed number of channels.
            model_conf["group_sizes"] = loss_groups(len(model_conf["levels"]), int(group_channels))
        # saved in config.yaml, group_channels included, so that the model rebuilds from it alone
        args.model_conf = model_conf
        model_conf = {k: v for k, v in model_conf.items() if k != "group_channels"}
        if not model_conf.get("levels"):
            raise ValueError("the SSL loss needs the FSQ levels: pass --code_info <codes dir>/code_info.yaml "
                             "or --model_conf levels=[...] group_sizes=[...]")
        frontend, input_size = None, args.input_size
        if getattr(args, "frontend", None) is not None:
            frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
            input_size = frontend.output_size()
        normalize = None
        if args.normalize is not None:
            normalize = normalize_choices.get_class(args.normalize)(**args.normalize_conf)
        specaug = None
        if args.specaug is not None:
            specaug = specaug_choices.get_class(args.specaug)(**args.specaug_conf)
        encoder = encoder_choices.get_class(args.encoder)(input_size=input_size, **args.encoder_conf)
        model = ChunkSSLModel(encoder=encoder, normalize=normalize, specaug=specaug, frontend=frontend,
                              **model_conf)
        if args.init is not None:
            initialize(model, args.init)
        # after initialize(): the tokenizer keeps its trained weights
        model.targets = targets
        return model


def build_targets(args: argparse.Namespace) -> Optional[torch.nn.Module]:
    """The frozen target tokenizer of ``--target_tokenizer`` (None without it); DataError if unusable."""
    path = getattr(args, "target_tokenizer", None)
    names = [spec[1] for spec in (getattr(args, "train_data_path_and_name_and_type", None) or [])]
    if path is None:
        if names and "codes" not in names:
            raise DataError("the training data has no codes and no --target_tokenizer was given: add "
                            "<codes.scp>,codes,kaldiio_ark (ssl.sh --ssl-targets dumped) or --target_tokenizer "
                            "<tokenizer> (--ssl-targets online)")
        return None
    if str(path).endswith((".yaml", ".yml")) and not getattr(args, "target_cmvn_stats", None):
        raise DataError(f"--target_tokenizer {path} is a BEST-RQ config: it needs --target_cmvn_stats "
                        f"<cmvn_stats.npz of the training fbank>")
    # building the tokenizer must not use the model's random draws: a seed gives the same SSL model
    # (weights, chunk and mask draws) with online or dumped targets
    with torch.random.fork_rng(devices=[]):
        if str(path).endswith((".yaml", ".yml")):
            tok = load_bestrq_tokenizer(path, args.target_cmvn_stats)
        else:
            tok = load_fsq_tokenizer(path)
    tok.requires_grad_(False)
    return tok.eval()
