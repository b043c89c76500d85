"""The WER-against-chunk-size figure shared by the result pages (ASR tables, the issue-13 replication)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chunk_axis(ax: Any, chunks: list[int], xfull: int, xlabel: str = "chunk size (ms)") -> None:
    """Log-2 chunk axis with "full" at ``xfull`` (right of the largest chunk), WER on y, grid and legend."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(chunks + [xfull], [str(c) for c in chunks] + ["full"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("WER (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def save_figure(fig: Any, out: Path, dpi: int) -> None:
    """Write ``fig`` to ``out`` through a temporary file (a rerun never finds half a PNG), then close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(out)
