"""bench/gpu_check.py: runs end to end on CPU at a tiny size, prints throughput and passing comparisons;
its comparisons can fail; and on a machine with CUDA the real GPU path passes (skipped without one)."""

from __future__ import annotations

import json
import math
import re
import sys

import pytest
import torch

from conftest import REPO

THROUGHPUT = re.compile(r"^\[(ssl|asr)\] throughput: ([0-9.]+) h of audio per (CPU|GPU)-hour \((\d+) timed steps",
                        re.M)


@pytest.fixture(scope="module")
def gpu_check():
    """The bench module, imported in-process (ESPnet's import is paid once for the suite)."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import gpu_check as module
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def _run(gpu_check, capsys, tmp_path, *args: str) -> tuple[int, str, dict]:
    """``gpu_check.main(args)``: exit status, stdout and stderr, and the JSON result."""
    out = tmp_path / "gpu_check.json"
    rc = gpu_check.main([*args, "--json", str(out)])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err, json.loads(out.read_text()) if out.exists() else {}


def _checks(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^\[compare\] (.+?): .*: (PASS|FAIL)$", stdout, re.M))


def test_cpu_run_prints_throughput_and_passes_its_comparisons(gpu_check, capsys, tmp_path, one_thread):
    rc, stdout, result = _run(gpu_check, capsys, tmp_path, "--device", "cpu", "--small", "--steps", "2",
                              "--warmup", "1")
    assert rc == 0, stdout[-3000:]
    throughput = {m[0]: (float(m[1]), m[2], int(m[3])) for m in THROUGHPUT.findall(stdout)}
    assert set(throughput) == {"ssl", "asr"}
    for name, (hours, unit, steps) in throughput.items():
        assert hours > 0 and unit == "CPU" and steps == 2
        fig = result["figures"][name]
        # the printed figure is audio over time of the timed steps: 2 steps of the batch
        assert fig["audio_s"] == pytest.approx(2 * fig["batch_audio_s"], rel=0.01)
        assert hours == pytest.approx(fig["audio_s"] / fig["elapsed_s"], rel=0.01)
        assert len(fig["losses"]) == 3 and all(math.isfinite(x) for x in fig["losses"])
    checks = _checks(stdout)
    expected = {"ssl loss float32", "ssl grad norm float32", "asr loss float32", "asr grad norm float32",
                "stream encoder outputs", "stream = chunk-masked full pass on cpu"}
    assert expected <= set(checks), checks
    assert set(checks.values()) == {"PASS"}
    assert len(checks) == len(result["checks"]) and result["pass"] is True
    assert re.search(r"^\[stream\] 2 utterances .* RTF [0-9.]+ on cpu", stdout, re.M)
    assert stdout.rstrip().splitlines()[-1].startswith(f"RESULT: PASS ({len(checks)}/{len(checks)} checks")


def test_comparison_fails_when_the_results_differ(gpu_check, capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))

    class Loss(torch.nn.Module):
        def __init__(self, scale: float):
            super().__init__()
            self.net, self.scale = model, scale

        def forward(self, x):
            return (self.net(x) ** 2).mean() * self.scale, {}, None

    batch = (torch.randn(5, 4),)
    report = gpu_check.Report()
    gpu_check.compare_losses(report, "same", Loss(1.0), Loss(1.0), batch, torch.device("cpu"))
    gpu_check.compare_losses(report, "off", Loss(1.0), Loss(1.005), batch, torch.device("cpu"))
    ok = {c["name"]: c["ok"] for c in report.checks}
    assert ok["same loss float32"] and ok["same grad norm float32"]
    # 0.5 % apart: over the float32 loss tolerance (0.1 %), within the grad-norm one (1 %)
    assert not ok["off loss float32"] and ok["off grad norm float32"]
    assert "FAIL" in capsys.readouterr().out


def test_cuda_is_refused_where_there_is_none(gpu_check, capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: the refusal path does not apply")
    rc, output, result = _run(gpu_check, capsys, tmp_path, "--device", "cuda", "--small")
    assert rc == 2 and "CUDA is not available" in output and not result


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run bench/gpu_check.sh on one)")
def test_gpu_run_passes_against_cpu(gpu_check, capsys, tmp_path):
    rc, stdout, result = _run(gpu_check, capsys, tmp_path, "--device", "cuda", "--small", "--steps", "3")
    assert rc == 0, stdout[-3000:]
    assert {m[0] for m in THROUGHPUT.findall(stdout) if m[2] == "GPU"} == {"ssl", "asr"}
    assert result["pass"] and all(result["figures"][n]["peak_gib"] > 0 for n in ("ssl", "asr"))


def test_a_part_that_raises_is_a_failed_check_and_the_run_goes_on(gpu_check, capsys):
    report = gpu_check.Report()

    def broken():
        raise RuntimeError("no kernel image is available for execution on the device\nmore")

    assert gpu_check.run_section(report, "ssl", broken) is None
    assert gpu_check.run_section(report, "asr", lambda: 7) == 7
    assert report.checks == [{"name": "ssl ran", "ok": False,
                              "detail": "RuntimeError: no kernel image is available for execution on the device"}]
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and "ssl ran: RuntimeError" in captured.out
