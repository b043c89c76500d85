"""Softmax groups of the SSL loss: from code_info.yaml, or cut by group_channels."""

from __future__ import annotations

import pytest

from chunkssl.ssl.task import ChunkSSLTask, loss_groups


def test_loss_groups_cut_consecutive_channels():
    assert loss_groups(8, 4) == [4, 4]
    assert loss_groups(6, 4) == [4, 2]
    assert loss_groups(3, 1) == [1, 1, 1]
    assert loss_groups(4, 8) == [4]
    with pytest.raises(ValueError, match="group_channels"):
        loss_groups(4, 0)


def _build(tmp_path, extra, level=7):
    info = tmp_path / "code_info.yaml"
    lv = ", ".join([str(level)] * 8)
    info.write_text(f"tokenizer: fsq\nlevels: [{lv}]\ngroups:\n- [{lv}]\n")
    parser = ChunkSSLTask.get_parser()
    args = parser.parse_args([
        "--code_info", str(info), "--encoder", "chunk_conformer",
        "--encoder_conf", "output_size=16", "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "linear_units=16", "--encoder_conf", "num_blocks=1", *extra,
    ])
    model = ChunkSSLTask.build_model(args)
    return model, args


def test_6m_code_info_is_one_group_unless_group_channels_cuts_it(tmp_path):
    model, args = _build(tmp_path, ["--model_conf", "group_channels=4"])
    assert args.model_conf["group_sizes"] == [4, 4]
    # saved with the groups it made, so config.yaml rebuilds the same heads even where code_info differs
    assert args.model_conf["group_channels"] == 4
    heads = [m for m in model.modules() if m.__class__.__name__ == "Linear" and m.out_features == 7 ** 4]
    assert len(heads) == 2, "one 2401-way head per group of 4 channels"
    _, args = _build(tmp_path, [], level=2)  # small levels: the single 256-way head is cheap
    assert args.model_conf["group_sizes"] == [8]
