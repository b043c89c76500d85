"""Load trained weights strictly: a checkpoint must fit its model exactly, and a broken file says so.

ESPnet's ``build_model_from_file`` loads with ``strict=False``, so an ASR config given an SSL or FSQ
checkpoint decodes with random weights without a word, and a corrupt file ends in advice to load it
unsafely. Every chunkssl entry point that decodes with a trained model goes through here instead:
the file is read with ``weights_only=True`` (a failure is "not a valid checkpoint: <path>"), then
every parameter and buffer of the model must be in it and nothing else may be.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from chunkssl.fileio import DataError

SHOWN_KEYS = 5  # keys named in a mismatch message; the counts say how many there are in all


def read_state(model_file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict stored in ``model_file`` (loaded onto the CPU without running any pickled code)."""
    path = Path(model_file)
    if not path.is_file():
        raise DataError(f"{path}: model file not found; pass the .pth written by training "
                        f"(e.g. exp/<run>/valid.acc.best.pth)")
    if path.stat().st_size == 0:
        raise DataError(f"not a valid checkpoint: {path} (the file is empty, 0 bytes); copy or train it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a cut or foreign file (EOFError, zip, pickle errors)
        # torch's own message may suggest weights_only=False: loading an untrusted file that way runs its code
        raise DataError(f"not a valid checkpoint: {path} ({type(e).__name__}: the file is cut short, corrupt or "
                        f"not a PyTorch weights file); copy or train it again") from e
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        what = f"a {type(state).__name__}" if not isinstance(state, dict) else f"keys {_few(sorted(map(str, state)))}"
        raise DataError(f"not a valid checkpoint: {path} (it holds {what}, not a model's weights; a training "
                        f"checkpoint.pth is not a model file: pass e.g. valid.acc.best.pth)")
    return state


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f", ... ({len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")


def check_keys(model: torch.nn.Module, state: dict[str, torch.Tensor], model_file: str | os.PathLike,
               config: str | os.PathLike | None = None) -> None:
    """Raise naming the missing and unexpected keys unless ``state`` holds exactly the model's keys."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if not missing and not unexpected:
        return
    built = f"the model built from {config}" if config else f"this {type(model).__name__}"
    parts = [f"{len(missing)} of its {len(expected)} parameter(s) are missing from the checkpoint "
             f"({_few(missing)})"] if missing else []
    parts += [f"the checkpoint holds {len(unexpected)} unexpected key(s) ({_few(unexpected)})"] if unexpected else []
    raise DataError(f"{model_file} does not fit {built}: {'; '.join(parts)}. It is a checkpoint of another "
                    f"model or task: pass the model file trained with this config")


def load_strict(model: torch.nn.Module, model_file: str | os.PathLike, config: str | os.PathLike | None = None,
                state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """Load ``model_file`` (or its already read ``state``) into ``model``; every key must match, and every shape."""
    state = read_state(model_file) if state is None else state
    check_keys(model, state, model_file, config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # same names, other sizes: torch lists each mismatch
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        raise DataError(f"{model_file} does not fit the model built from {config or type(model).__name__}: "
                        f"{'; '.join(lines[:SHOWN_KEYS]) or e}") from e
    return model


def build_from_files(task, config: str | os.PathLike, model_file: str | os.PathLike, device: str = "cpu"):
    """``(model, train args)`` of an ESPnet task's ``config.yaml`` + ``.pth``, loaded strictly, in eval mode.

    Relative paths in the config are found from the config's folder too (:mod:`chunkssl.saved_config`).
    """
    from chunkssl.saved_config import config_namespace

    state = read_state(model_file)  # a broken file fails before the model is built
    args = config_namespace(config)
    model = task.build_model(args).to(device)
    load_strict(model, model_file, config, state)
    return model.eval(), args
