"""One code_info.yaml reader (chunkssl.fsq.io.read_code_info) behind the frontend, the SSL task and codec."""

from __future__ import annotations

import pytest
import yaml

from chunkssl.fileio import DataError
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fsq.io import read_code_info
from chunkssl.ssl.task import levels_from_code_info

INFO = dict(tokenizer="fsq", levels=[8, 5, 5, 5], groups=[[8, 5], [5, 5]], vocab_size=1000, frame_shift_ms=40)


def _write(path, info) -> None:
    path.write_text(yaml.safe_dump(info), encoding="utf-8")


def test_dir_file_and_mapping_read_alike(tmp_path):
    _write(tmp_path / "code_info.yaml", INFO)
    assert read_code_info(tmp_path) == read_code_info(tmp_path / "code_info.yaml") == read_code_info(INFO) == INFO
    copy = read_code_info(INFO)
    copy["levels"] = []
    assert INFO["levels"] == [8, 5, 5, 5]  # a mapping is copied
    assert levels_from_code_info(tmp_path / "code_info.yaml") == ([8, 5, 5, 5], [2, 2])
    assert TokenFrontend(tmp_path / "code_info.yaml").groups == INFO["groups"]


@pytest.mark.parametrize("content,match", [
    (None, "code_info.yaml not found.*fsq_tokenize"),
    ("- 1\n- 2\n", "not a YAML mapping"),
    (dict(INFO, groups=[]), "expected 'groups:'.*fsq_tokenize"),
    (dict(INFO, groups=[8, 5, 5, 5]), "expected 'groups:'"),
    (dict(INFO, levels=[8, 5, 5]), "disagree with the flattened 'groups'"),
])
def test_errors_name_the_file_and_what_to_do(tmp_path, content, match):
    path = tmp_path / "code_info.yaml"
    if isinstance(content, dict):
        _write(path, content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    for reader in (read_code_info, levels_from_code_info, TokenFrontend):
        with pytest.raises(DataError, match=match) as err:
            reader(path)
        assert str(path) in str(err.value)
