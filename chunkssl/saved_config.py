"""Read a saved training ``config.yaml`` so that its relative paths work from any working directory.

ESPnet writes paths into ``config.yaml`` as they were given, relative to the recipe folder that
training ran in (``dump/fbank/train/cmvn_stats.npz``, ``data/token_list/bpe.model``, a
``code_info.yaml``). A relative path that does not exist from the current directory is looked up
beside the config, then in each folder above it (so ``exp/<run>/config.yaml`` finds the recipe's
``dump/``), and written back absolute. A model folder that carries its own files (``cmvn_stats.npz``
beside ``config.yaml``, as a packed model does) therefore works wherever it is moved.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from chunkssl.fileio import DataError

SEARCH_DEPTH = 4  # folders above the config searched: exp/<run>/config.yaml is two below the recipe


def _resolve(value, bases: list[Path]):
    """``value`` with every relative path string that exists under one of ``bases`` made absolute."""
    if isinstance(value, dict):
        return {k: _resolve(v, bases) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, bases) for v in value]
    if not isinstance(value, str) or not value or "\n" in value or os.path.isabs(value) or os.path.exists(value):
        return value
    for base in bases:
        candidate = base / value
        if candidate.exists():
            return str(candidate)
    return value


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """The mapping in a YAML file; a missing file or other content is a DataError naming ``what`` it should be."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise DataError(f"{path}: {what} is not a YAML mapping")
    return data


def read_config(config: str | os.PathLike) -> dict:
    """The mapping of a saved ``config.yaml`` with its relative paths resolved (see the module doc)."""
    path = Path(config)
    data = read_yaml_mapping(path, "training config (pass the config.yaml beside the model file)")
    here = path.resolve().parent
    return _resolve(data, [here, *list(here.parents)[:SEARCH_DEPTH]])


def config_namespace(config: str | os.PathLike) -> argparse.Namespace:
    """:func:`read_config` as the ``argparse.Namespace`` an ESPnet task's ``build_model`` takes."""
    return argparse.Namespace(**read_config(config))


@contextlib.contextmanager
def resolved_config_file(config: str | os.PathLike) -> Iterator[str]:
    """A temporary copy of ``config`` with resolved paths, for APIs that read the file themselves."""
    fd, tmp = tempfile.mkstemp(prefix="config.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(read_config(config), f, allow_unicode=True, sort_keys=False)
        yield tmp
    finally:
        os.unlink(tmp)
