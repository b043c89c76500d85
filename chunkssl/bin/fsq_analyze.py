"""Compare tokenizers' codes: reconstruction error, codebook utilisation and (with phone_ali) purity/PNMI.

Example::

    python -m chunkssl.bin.fsq_analyze --tokenizers 1k=dump/fsq_1k/dev 6m=dump/fsq_6m/dev \\
        bestrq=dump/bestrq/dev --feats-scp dump/fbank/dev/feats.scp --phone-ali data/dev/phone_ali \\
        --out-dir exp/fsq_analysis/dev

Each ``name=DIR`` is a ``chunkssl.bin.fsq_tokenize`` output dir. Reconstruction (FSQ only, needs
``--feats-scp``) decodes the stored codes with the model recorded in ``code_info.yaml`` and compares
to the normalised stacked fbank; "mean MSE" is the error of predicting the training mean fbank
(zero after CMVN). Phone metrics label each token frame with the phone at its centre and use the
joint index (and, for several groups, each group's index); frames in the gaps between phones get
``--gap-label`` (default ``sil``). Writes ``results.md``, ``metrics.json``
and ``metrics.png`` in ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Sequence

import kaldiio
import numpy as np
import torch

from chunkssl.fileio import DataError, atomic_open, run_cli
from chunkssl.fsq.analysis import frame_labels, purity_pnmi, read_phone_ali, utilisation
from chunkssl.fsq.io import load_code_source, read_code_info, read_codes
from chunkssl.fsq.quantizer import codes_to_index


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizers", nargs="+", required=True, metavar="NAME=DIR",
                   help="code dirs written by fsq_tokenize, each with a display name")
    p.add_argument("--feats-scp", help="fbank of the same utterances (for reconstruction error)")
    p.add_argument("--phone-ali", help="phone alignment for purity / PNMI: 'utt start_sec end_sec phone' "
                                       "lines, or 'utt phone start end ...' lines (synthetic corpus)")
    p.add_argument("--gap-label", default="sil",
                   help="label of token frames inside an aligned utterance that no phone covers (pauses, "
                        "padding); '' leaves them out")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--batch-size", type=int, default=16)
    return p


def reconstruction(info: dict, codes: dict[str, np.ndarray], keys: list[str], feats_scp: str,
                   batch_size: int) -> dict[str, float]:
    """MSE of decoding the stored codes vs. the normalised stacked fbank, and of predicting the mean."""
    model = load_code_source(info)
    feats = kaldiio.load_scp(feats_scp)
    err = base = count = 0.0
    with torch.no_grad():
        for start in range(0, len(keys), batch_size):
            batch = keys[start:start + batch_size]
            missing = [k for k in batch if k not in feats]
            if missing:
                raise DataError(f"{feats_scp}: no fbank for utterance(s) {missing[:5]} that have codes")
            mats = [np.array(feats[k], dtype=np.float32) for k in batch]
            cods = [np.asarray(codes[k]).astype(np.int64) for k in batch]
            for k, m, c in zip(batch, mats, cods):
                if m.shape[0] // model.stack != c.shape[0]:
                    raise DataError(f"utterance {k!r}: {c.shape[0]} token frames but {m.shape[0]} fbank frames "
                                    f"in {feats_scp}; were the codes made from these features?")
            lens = torch.tensor([m.shape[0] for m in mats])
            fb = torch.zeros(len(mats), int(lens.max()), model.input_dim)
            cb = torch.full((len(mats), max(c.shape[0] for c in cods), len(model.code_levels)), -1,
                            dtype=torch.int64)
            for i, (m, c) in enumerate(zip(mats, cods)):
                fb[i, : m.shape[0]] = torch.from_numpy(m)
                cb[i, : c.shape[0]] = torch.from_numpy(c)
            target, tok_lens, mask = model.frontend(fb, lens)
            recon = model.decode_codes(cb, tok_lens)
            valid = mask.unsqueeze(-1).float()
            err += float(((recon - target) * valid).pow(2).sum())
            base += float((target * valid).pow(2).sum())
            count += float(valid.sum()) * target.shape[-1]
    mse, mean_mse = err / max(count, 1.0), base / max(count, 1.0)
    return dict(recon_mse=mse, mean_mse=mean_mse, rel_mse=mse / mean_mse if mean_mse > 0 else float("nan"))


def analyse(name: str, code_dir: str, args: argparse.Namespace, ali: dict | None) -> dict:
    """All metrics of one code directory."""
    info = read_code_info(code_dir)
    codes = read_codes(code_dir)
    keys = list(codes.keys())
    if not keys:
        raise DataError(f"{code_dir}/codes.scp is empty")
    levels, groups = info["levels"], info["groups"]
    arrays = [np.asarray(codes[k]).astype(np.int64).reshape(-1, len(levels)) for k in keys]
    allc = torch.from_numpy(np.concatenate(arrays))
    joint = codes_to_index(allc, levels).numpy()
    bounds = np.cumsum([0] + [len(g) for g in groups])
    group_idx = [codes_to_index(allc[:, bounds[i]:bounds[i + 1]], g).numpy() for i, g in enumerate(groups)]
    result = dict(name=name, dir=str(code_dir), tokenizer=info["tokenizer"], groups=groups,
                  joint=utilisation(allc.numpy(), joint, info["vocab_size"]),
                  per_group=[utilisation(allc[:, bounds[i]:bounds[i + 1]].numpy(), gi, info["group_vocab_sizes"][i])
                             for i, gi in enumerate(group_idx)])
    if args.feats_scp and info["tokenizer"] in ("fsq", "rvq"):
        result["recon"] = reconstruction(info, codes, keys, args.feats_scp, args.batch_size)
    if ali is not None:
        shift = info["frame_shift_ms"] / 1000.0
        labels, keep = [], []
        gap = args.gap_label or None
        for k, a in zip(keys, arrays):
            # Utterances without any alignment are left out rather than labelled all-gap.
            lab = frame_labels(ali[k], a.shape[0], shift, gap) if k in ali else [None] * a.shape[0]
            labels += [x for x in lab if x is not None]
            keep += [x is not None for x in lab]
        keep = np.array(keep, dtype=bool)
        if not keep.any():
            logging.warning("%s: no token frame falls inside a phone segment of %s", name, args.phone_ali)
        phone_ids = np.unique(np.array(labels, dtype=object), return_inverse=True)[1] if labels else np.zeros(0)
        result["phones"] = dict(frames=int(keep.sum()), **purity_pnmi(phone_ids, joint[keep]))
        result["phones_per_group"] = [purity_pnmi(phone_ids, gi[keep]) for gi in group_idx]
    return result


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def markdown(results: list[dict], command: str) -> str:
    """Results as markdown tables (joint index; then per group where a tokenizer has several)."""
    lines = ["# FSQ / BEST-RQ code analysis", "", "```", command, "```", "",
             "| tokenizer | kind | vocab | frames | distinct | used | perplexity | mean ch. ppl | recon MSE "
             "| mean MSE | rel. MSE | phone purity | cluster purity | PNMI |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        j, rec, ph = r["joint"], r.get("recon", {}), r.get("phones", {})
        ch = np.mean(j["channel_perplexity"]) if j["channel_perplexity"] else None
        lines.append(
            f"| {r['name']} | {r['tokenizer']} | {j['vocab_size']:,} | {j['frames']:,} | {j['distinct']:,} "
            f"| {100 * j['used_fraction']:.3g}% | {_f(j['perplexity'], 1)} | {_f(ch, 2)} "
            f"| {_f(rec.get('recon_mse'))} | {_f(rec.get('mean_mse'))} | {_f(rec.get('rel_mse'))} "
            f"| {_f(ph.get('phone_purity'))} | {_f(ph.get('cluster_purity'))} | {_f(ph.get('pnmi'))} |")
    multi = [r for r in results if len(r["groups"]) > 1]
    if multi:
        lines += ["", "Per group:", "", "| tokenizer | group | vocab | distinct | perplexity | phone purity "
                  "| cluster purity | PNMI |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in multi:
            for gi, g in enumerate(r["per_group"]):
                ph = r["phones_per_group"][gi] if "phones_per_group" in r else {}
                lines.append(f"| {r['name']} | {gi} | {g['vocab_size']:,} | {g['distinct']:,} "
                             f"| {_f(g['perplexity'], 1)} | {_f(ph.get('phone_purity'))} "
                             f"| {_f(ph.get('cluster_purity'))} | {_f(ph.get('pnmi'))} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    """Bar charts of the main metrics across tokenizers, saved as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in results]
    panels = [("distinct codes", [r["joint"]["distinct"] for r in results], True),
              ("joint perplexity", [r["joint"]["perplexity"] for r in results], True),
              ("recon MSE / mean MSE", [r.get("recon", {}).get("rel_mse", np.nan) for r in results], False),
              ("phone purity", [r.get("phones", {}).get("phone_purity", np.nan) for r in results], False),
              ("cluster purity", [r.get("phones", {}).get("cluster_purity", np.nan) for r in results], False),
              ("PNMI", [r.get("phones", {}).get("pnmi", np.nan) for r in results], False)]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (title, values, log) in zip(axes.flat, panels):
        ax.bar(names, [0 if v is None or np.isnan(v) else v for v in values], color="tab:blue")
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def main(cmd: Sequence[str] | None = None) -> None:
    """Analyse code dirs and write the table and plot."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fsq_analyze: %(message)s")
    args = get_parser().parse_args(cmd)
    specs = []
    for item in args.tokenizers:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise DataError(f"--tokenizers entry {item!r} is not NAME=DIR")
        specs.append((name, path))
    ali = read_phone_ali(args.phone_ali) if args.phone_ali else None
    results = []
    for name, path in specs:
        logging.info("analysing %s (%s)", name, path)
        results.append(analyse(name, path, args, ali))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    argv = list(cmd) if cmd is not None else sys.argv[1:]
    command = "python -m chunkssl.bin.fsq_analyze " + " ".join(shlex.quote(a) for a in argv)
    with atomic_open(out / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    table = markdown(results, command)
    with atomic_open(out / "results.md", "w", encoding="utf-8") as f:
        f.write(table)
    plot(results, out / "metrics.png")
    print(table)


if __name__ == "__main__":
    sys.exit(run_cli("fsq_analyze", main))
