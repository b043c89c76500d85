"""ESPnet task that trains the FSQ fbank tokenizer with ESPnet's Trainer (checkpoints, resume, tensorboard).

Data: ``--train_data_path_and_name_and_type dump/fbank/train/feats.scp,speech,kaldi_ark`` (and the same
for valid), shape files ``utt2num_frames``. Normalisation uses ``--cmvn_stats`` (the fbank stage's
``cmvn_stats.npz``, ESPnet GlobalMVN format) copied into the model's buffers, so no collect-stats pass
is needed; ``--collect_stats true`` still works and writes ``<output_dir>/train/feats_stats.npz`` in
the same format, which may then be given as ``--cmvn_stats``.

Raw audio (``--feats-type raw`` in ssl1): ``--frontend kaldi_fbank`` and ``audio.scp,speech,audio_16000``
data; the model computes the fbank of each batch (the checkpoint is the same as with dumped fbank).
"""

from __future__ import annotations

import argparse
import inspect
import logging
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none

from chunkssl.frontend import KaldiFbankFrontend
from chunkssl.fsq.rvq import ResidualVQ
from chunkssl.fsq.quantizer import resolve_levels
from chunkssl.fsq.tokenizer import FSQTokenizer


def rvq_conf_with_defaults(rvq_conf: dict) -> dict:
    """Every ResidualVQ argument, defaults filled in, so config.yaml records the actual RVQ."""
    params = inspect.signature(ResidualVQ.__init__).parameters
    unknown = sorted(set(rvq_conf) - set(params) - {"self"})
    if unknown:
        raise ValueError(f"unknown rvq_conf option(s) {unknown}; valid: {sorted(set(params) - {'self'})}")
    return {name: rvq_conf.get(name, p.default) for name, p in params.items() if name != "self"}


frontend_choices = ClassChoices("frontend", classes=dict(kaldi_fbank=KaldiFbankFrontend), type_check=AbsFrontend,
                                default=None, optional=True)


class FSQTask(AbsTask):
    """Train :class:`FSQTokenizer` (FSQ or RVQ bottleneck) on fbank reconstruction."""

    num_optimizers: int = 1
    class_choices_list = [frontend_choices]

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Task options: the CMVN stats file and the tokenizer's constructor arguments."""
        group = parser.add_argument_group("FSQ tokenizer related")
        group.add_argument(
            "--cmvn_stats", type=str_or_none, default=None,
            help="GlobalMVN stats npz (count, sum, sum_square) of the training fbank; stored in the "
                 "model so the checkpoint is self-contained. Required unless --collect_stats true.",
        )
        group.add_argument(
            "--model_conf", action=NestedDictAction, default=dict(),
            help="FSQTokenizer arguments (but frontend, built from --frontend), e.g. levels (preset name 1k/64k/6m/791m, a list, or a list of "
                 "groups), input_dim, stack, hidden, num_blocks, kernel_size, dropout, loss (mse|l1), "
                 "quantizer (fsq|rvq) and, for rvq, rvq_conf (chunkssl.fsq.rvq.ResidualVQ arguments: "
                 "num_codebooks, codebook_size, dim, decay, epsilon, kmeans_init, kmeans_iters, "
                 "dead_code_threshold, commitment_weight, seed)",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        # Defaults that suit this task better than ESPnet's ASR-oriented ones; a config may override them.
        parser.set_defaults(
            num_att_plot=0,
            optim="adam",
            batch_type="sorted",
            best_model_criterion=[("valid", "loss", "min"), ("valid", "rel_mse", "min")],
        )

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]
    ]:
        """Zero-pad fbank; the model masks padded frames by ``speech_lengths``."""
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace,
                            train: bool) -> Optional[Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]]:
        """No preprocessing: features are dumped fbank."""
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        """The only input is the fbank matrix named ``speech``."""
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        """No optional inputs."""
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> FSQTokenizer:
        """Build the tokenizer; the preset name in ``model_conf.levels`` is expanded in the saved config."""
        conf = dict(args.model_conf)
        if conf.get("quantizer", "fsq") == "rvq":
            if "levels" in conf:
                raise ValueError("model_conf.levels is an FSQ option; with quantizer: rvq give rvq_conf "
                                 "(num_codebooks, codebook_size, dim, ...) instead")
            conf["rvq_conf"] = rvq_conf_with_defaults(conf.get("rvq_conf") or {})
        else:
            conf["levels"] = resolve_levels(conf.get("levels", "6m"))
        # Written back so config.yaml records the actual levels, not a preset name that might change.
        args.model_conf = conf
        stats = getattr(args, "cmvn_stats", None)
        if stats is None and not getattr(args, "collect_stats", False):
            raise ValueError(
                "--cmvn_stats is required for training: give the fbank stage's cmvn_stats.npz (or run once "
                "with --collect_stats true and use <output_dir>/train/feats_stats.npz)"
            )
        if stats is None:
            logging.info("no --cmvn_stats: building an unnormalised model for --collect_stats")
        frontend = None
        if getattr(args, "frontend", None) is not None:
            frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
        return FSQTokenizer(**conf, cmvn_stats=stats, frontend=frontend)

