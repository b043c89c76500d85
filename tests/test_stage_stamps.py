"""Stage helpers of egs2/TEMPLATE/stages.sh: a decode is redone when its options change or it had failures."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from conftest import REPO, UTILS

# A stand-in decoder: counts its runs, writes a hypothesis, and lists a failure while FAIL exists.
FAKE_DECODER = """#!/bin/bash
out=${@: -1}
echo "$*" >> "$out/../runs"
echo "u1 hyp" > "$out/text"
if [ -e "$out/../FAIL" ]; then echo "u2 zero samples" > "$out/failed"; exit 1; fi
rm -f "$out/failed"
"""


def _decode(tmp: Path, beam: str) -> subprocess.CompletedProcess:
    script = f"""
set -euo pipefail
source {REPO}/egs2/TEMPLATE/stages.sh
asr_exp={tmp}/exp inference_model=model.pth decode_cmd={UTILS}/run.pl
decode_into {tmp}/exp/dec {tmp}/decoder.sh --beam-size {beam} {tmp}/exp/dec
"""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


def _runs(tmp: Path) -> int:
    runs = tmp / "exp" / "runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_decode_is_redone_when_options_change_or_utterances_failed(tmp_path):
    (tmp_path / "exp" / "dec").mkdir(parents=True)
    (tmp_path / "exp" / "model.pth").write_bytes(b"weights")
    (tmp_path / "decoder.sh").write_text(FAKE_DECODER)
    (tmp_path / "decoder.sh").chmod(0o755)
    time.sleep(0.05)  # the decode must be newer than the model
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 1
    r = _decode(tmp_path, "10")
    assert r.returncode == 0 and _runs(tmp_path) == 1 and "is up to date" in r.stderr
    # other options: decoded again, and then that decode is the one kept
    assert _decode(tmp_path, "1").returncode == 0 and _runs(tmp_path) == 2
    assert _decode(tmp_path, "1").returncode == 0 and _runs(tmp_path) == 2
    # a decode with failed utterances stops the stage and is not taken as done by the next run
    (tmp_path / "exp" / "FAIL").touch()
    assert _decode(tmp_path, "10").returncode != 0 and _runs(tmp_path) == 3
    assert not (tmp_path / "exp" / "dec" / ".options").exists()
    (tmp_path / "exp" / "FAIL").unlink()
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 4
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 4
