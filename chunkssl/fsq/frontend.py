"""Token frontend for ESPnet ASR: embeds discrete tokenizer codes ``[B, T', C]`` into features ``[B, T', D]``.

Each code unit gets its own embedding table of ``embed_dim``: a unit is one code channel
(``embed: channel``; an FSQ channel of ``L_j`` values, an RVQ codebook) or one channel group
(``embed: group``; the group's mixed-radix index, e.g. 64,000 entries for FSQ 64k). The unit
embeddings are combined by ``sum``, ``mean`` or ``concat``, then optionally projected by a linear
layer to ``output_size``. No subsampling: one output frame per token frame (40 ms for stack 4).

``init: codebook`` starts the tables from the tokenizer's codebook so that, summed, they give
``W q(codes)``: ``q`` is the quantizer's output vector (the dequantized FSQ values, or the sum of the
RVQ codewords) and ``W [embed_dim, dim(q)]`` is the identity when ``embed_dim == dim(q)``, otherwise
seeded random orthonormal columns scaled by ``sqrt(embed_dim / dim(q))`` (so each output dimension
keeps the scale of ``q``). FSQ needs only the levels from ``code_info.yaml``; RVQ reads the codewords
from the tokenizer checkpoint (``model``, else ``model_file`` recorded in ``code_info.yaml``).
``init: random`` draws the tables from N(0, 1/units) for ``sum`` and N(0, 1) otherwise. ESPnet's
``--init`` re-initialises embeddings; :meth:`espnet_initialization_fn` then restores this init.

In training, token SpecAugment (``chunkssl.fsq.specaug``, options under ``specaug``) and Gaussian
noise of ``noise_std`` act on the unit embeddings of valid frames; padded frames output zeros.

Register it with :func:`register_token_frontend`, then an ASR config can say::

    frontend: token
    frontend_conf:
        code_info: dump/fsq_64k/train/code_info.yaml
        combine: sum
        init: codebook
    specaug: null        # token SpecAugment lives in frontend_conf.specaug
    normalize: null
"""

from __future__ import annotations

import math
import os

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend

from chunkssl.fsq.specaug import TokenSpecAug
from chunkssl.fileio import DataError
from chunkssl.fsq.features import length_mask
from chunkssl.fsq.io import read_code_info
from chunkssl.fsq.quantizer import FSQ, _product, codes_to_index, index_to_codes

FRONTEND_NAME = "token"
MAX_GROUP_VOCAB = 1_000_000  # per-group tables past this are better embedded per channel


def init_basis(embed_dim: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``W [embed_dim, dim]``: identity if equal, else seeded orthonormal columns times ``sqrt(embed_dim/dim)``."""
    if embed_dim < dim:
        raise ValueError(f"codebook init needs embed_dim >= {dim} (the quantized vector's size), got {embed_dim}")
    if embed_dim == dim:
        return torch.eye(dim)
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(embed_dim, dim, generator=gen, dtype=torch.float64))
    return (q * math.sqrt(embed_dim / dim)).float()


class TokenFrontend(AbsFrontend):
    """Per-unit embeddings of tokenizer codes, combined (sum/mean/concat) and optionally projected."""

    def __init__(
        self,
        code_info: str | os.PathLike | dict,
        model: str | None = None,
        config: str | None = None,
        embed: str = "channel",
        embed_dim: int = 256,
        combine: str = "sum",
        output_size: int | None = None,
        init: str = "codebook",
        specaug: dict | None = None,
        noise_std: float = 0.0,
        seed: int = 0,
        fs: int | str | None = None,  # accepted and ignored (ESPnet recipes may pass fs to a frontend)
    ):
        super().__init__()
        if embed not in ("channel", "group"):
            raise ValueError(f"embed must be 'channel' or 'group', got {embed!r}")
        if combine not in ("sum", "mean", "concat"):
            raise ValueError(f"combine must be 'sum', 'mean' or 'concat', got {combine!r}")
        if init not in ("codebook", "random"):
            raise ValueError(f"init must be 'codebook' or 'random', got {init!r}")
        info = read_code_info(code_info)
        self.kind = str(info.get("tokenizer", "fsq"))
        self.groups = [[int(v) for v in g] for g in info["groups"]]
        self.levels = [v for g in self.groups for v in g]
        self.embed = embed
        self.combine = combine
        self.init = init
        self.noise_std = float(noise_std)
        self.seed = seed
        if embed == "channel":
            self.unit_vocab = list(self.levels)
        else:
            self.unit_vocab = [_product(g) for g in self.groups]
            if max(self.unit_vocab) > MAX_GROUP_VOCAB:
                raise ValueError(f"embed: group would need a table of {max(self.unit_vocab):,} entries; "
                                 f"use embed: channel for these codes (groups {self.groups})")
        self.group_slices = []
        start = 0
        for g in self.groups:
            self.group_slices.append((start, start + len(g)))
            start += len(g)
        self.num_units = len(self.unit_vocab)
        self.embed_dim = embed_dim
        offsets = torch.tensor([0] + self.unit_vocab[:-1], dtype=torch.int64).cumsum(0)
        self.register_buffer("unit_offsets", offsets, persistent=False)
        self.register_buffer("channel_levels", torch.tensor(self.levels, dtype=torch.int64), persistent=False)
        # A bare parameter, not nn.Embedding: ESPnet's --init resets nn.Embedding modules *after* calling
        # our espnet_initialization_fn (parents are visited first), which would undo the codebook init.
        self.table = torch.nn.Parameter(torch.empty(sum(self.unit_vocab), embed_dim))
        combined = embed_dim * self.num_units if combine == "concat" else embed_dim
        self.projection = torch.nn.Linear(combined, output_size) if output_size else None
        self._output_size = output_size or combined
        self.specaug = TokenSpecAug(self.num_units, embed_dim, **specaug) if specaug else None
        self.basis: torch.Tensor | None = None
        self._initial_table = self._initial_tables(info, model, config)
        self.espnet_initialization_fn()

    def output_size(self) -> int:
        """Feature dimension of the output."""
        return self._output_size

    # -- initialisation --
    def _quantizer_vectors(self, info: dict, model: str | None, config: str | None) -> list[torch.Tensor]:
        """Per unit, the quantizer's output vector (before ``W``) of each of the unit's codes."""
        if self.kind == "fsq":
            fsq = FSQ(self.groups)
            if self.embed == "channel":
                return [self._fsq_unit(fsq, j, j + 1, torch.arange(level).unsqueeze(-1))
                        for j, level in enumerate(self.levels)]
            return [self._fsq_unit(fsq, s, e, index_to_codes(torch.arange(self.unit_vocab[gi]), self.groups[gi]))
                    for gi, (s, e) in enumerate(self.group_slices)]
        if self.kind == "rvq":
            books = self._rvq_codebooks(info, model, config)
            return [books[n] for n in range(books.shape[0])]
        raise ValueError(f"init: codebook is not available for {self.kind!r} codes; use init: random")

    @staticmethod
    def _fsq_unit(fsq: FSQ, start: int, end: int, unit_codes: torch.Tensor) -> torch.Tensor:
        """``[V, C]``: dequantized values of channels ``start:end`` for each row of codes, 0 elsewhere,
        so that summing one row per unit gives the full dequantized vector."""
        codes = torch.zeros(unit_codes.shape[0], fsq.dim, dtype=torch.int64)
        codes[:, start:end] = unit_codes
        out = torch.zeros(unit_codes.shape[0], fsq.dim)
        out[:, start:end] = fsq.codes_to_values(codes)[:, start:end]
        return out

    def _rvq_codebooks(self, info: dict, model: str | None, config: str | None) -> torch.Tensor:
        from chunkssl.fsq.io import load_fsq_tokenizer

        model_file = model or info.get("model_file")
        if not model_file:
            raise DataError("init: codebook for RVQ codes needs the tokenizer checkpoint: give frontend_conf.model "
                            "(code_info.yaml records no model_file)")
        config_file = config or (info.get("config_file") if not model else None)
        tok = load_fsq_tokenizer(model_file, config_file)
        if tok.quantizer_type != "rvq" or tok.code_groups != self.groups:
            raise DataError(f"{model_file}: its codes {tok.quantizer_type} {tok.code_groups} are not the codes "
                            f"described by code_info ({self.kind} {self.groups}); give the matching model")
        return tok.quantizer.codebooks.detach().float().cpu()

    def _initial_tables(self, info: dict, model: str | None, config: str | None) -> torch.Tensor:
        if self.init == "random":
            gen = torch.Generator().manual_seed(self.seed)
            std = 1.0 / math.sqrt(self.num_units) if self.combine == "sum" else 1.0
            return torch.randn(self.table.shape[0], self.embed_dim, generator=gen) * std
        vectors = self._quantizer_vectors(info, model, config)
        self.basis = init_basis(self.embed_dim, vectors[0].shape[-1], self.seed)
        return torch.cat([v @ self.basis.t() for v in vectors])

    def espnet_initialization_fn(self) -> None:
        """(Re)apply this frontend's own initialisation (ESPnet's ``--init`` calls it after its own)."""
        with torch.no_grad():
            self.table.copy_(self._initial_table)
        if self.projection is not None:
            self.projection.reset_parameters()
        if self.specaug is not None:
            self.specaug.reset_parameters()

    def unit_table(self, unit: int) -> torch.Tensor:
        """The embedding table ``[vocab_u, embed_dim]`` of one unit (a view of the shared weight)."""
        start = int(self.unit_offsets[unit])
        return self.table[start:start + self.unit_vocab[unit]]

    # -- forward --
    def unit_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Per-unit indices ``[B, T', U]`` of channel codes ``[B, T', C]``."""
        if self.embed == "channel":
            return codes
        return torch.stack([codes_to_index(codes[..., s:e], g) for (s, e), g in zip(self.group_slices, self.groups)],
                           dim=-1)

    def _check_codes(self, speech: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if speech.dim() == 2 and len(self.levels) == 1:
            speech = speech.unsqueeze(-1)
        if speech.dim() != 3 or speech.shape[-1] != len(self.levels):
            raise DataError(f"token frontend expects codes [batch, frames, {len(self.levels)}] ({self.kind} "
                            f"groups {self.groups}), got shape {tuple(speech.shape)}; is 'speech' the codes.scp "
                            f"of the tokenizer described by code_info?")
        valid = length_mask(lengths, speech.shape[1])
        if speech.is_floating_point():
            if bool((speech != speech.round())[valid].any()):
                raise DataError("token frontend got non-integer codes; read codes.scp with kaldiio_ark (or "
                                "the float32 codes of fsq_tokenize --dtype float32 with kaldi_ark)")
            speech = speech.round()
        codes = speech.to(torch.int64).masked_fill(~valid.unsqueeze(-1), 0)
        bad = (codes < 0) | (codes >= self.channel_levels)
        if bool(bad.any()):
            j = int(bad.nonzero()[0, -1])
            raise DataError(f"code {int(codes[bad][0])} in channel {j} is outside [0, {self.levels[j] - 1}]; "
                            f"the codes do not come from the tokenizer described by code_info")
        return codes, valid

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``[B, T', C]`` (int, or float holding ints) and lengths -> features ``[B, T', D]``, lengths."""
        codes, valid = self._check_codes(input, input_lengths)
        emb = self.unit_embeddings(codes)
        if self.training and self.noise_std > 0:
            emb = emb + torch.randn_like(emb) * self.noise_std * valid[..., None, None].to(emb.dtype)
        if self.specaug is not None:
            emb = self.specaug(emb, input_lengths)
        out = self.combine_units(emb)
        return out * valid.unsqueeze(-1).to(out.dtype), input_lengths

    def unit_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``[B, T', U, E]`` of valid int64 codes ``[B, T', C]`` (no checks: the ONNX export
        traces this, and the checks of :meth:`forward` raise, which a graph cannot)."""
        return torch.nn.functional.embedding(self.unit_codes(codes) + self.unit_offsets, self.table)

    def combine_units(self, emb: torch.Tensor) -> torch.Tensor:
        """Features ``[B, T', D]`` of unit embeddings ``[B, T', U, E]``: combined, then projected if configured."""
        if self.combine == "sum":
            out = emb.sum(dim=2)
        elif self.combine == "mean":
            out = emb.mean(dim=2)
        else:
            out = emb.flatten(2)
        return self.projection(out) if self.projection is not None else out


def register_token_frontend() -> None:
    """Add ``token`` to ESPnet's ASR ``frontend_choices`` (idempotent); call before building a parser/model."""
    from espnet2.tasks import asr

    asr.frontend_choices.classes.setdefault(FRONTEND_NAME, TokenFrontend)
