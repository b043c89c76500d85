"""Data preparation for each supported corpus: its published layout in, Kaldi data dirs out."""

from chunkssl.corpora.writer import Utterance, write_data_dir

__all__ = ["Utterance", "write_data_dir"]
