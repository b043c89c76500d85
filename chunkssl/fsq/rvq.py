"""Residual vector quantization (RVQ) with k-means initialisation and EMA codebook updates.

Stage ``n`` quantizes the residual left by stages ``0 .. n-1`` to its nearest codeword (Euclidean)
in codebook ``n``; the quantized vector is the sum of the chosen codewords, and the codes of a frame
are ``[num_codebooks]`` ints. Codebooks are not trained by gradient: on the first training batch
each stage is initialised by seeded k-means on its residuals, then every training batch moves each
codeword to an exponential moving average of the residuals assigned to it (cluster sizes with
Laplace smoothing, so a rarely used codeword never divides by zero). Codewords whose EMA cluster
size falls below ``dead_code_threshold`` are replaced by random residuals of the current batch.
The encoder is trained through a straight-through estimator and a commitment loss (per stage, the
squared distance of the residual to its codeword, averaged over valid frames, summed over stages).

Under DDP the per-batch assignment statistics are all-reduced, so every rank takes the same EMA
step; DDP's buffer broadcast keeps the rest (initialisation, replaced codes) identical across ranks.
"""

from __future__ import annotations

import torch

from chunkssl.fsq.quantizer import QuantizerOutput, codes_to_index, resolve_levels


def nearest_codeword(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword (squared Euclidean distance) for each row of ``x [M, D]``."""
    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; the first term does not change the argmin.
    scores = codebook.pow(2).sum(-1).unsqueeze(0) - 2.0 * (x @ codebook.t())
    return scores.argmin(dim=-1)


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of ``x [M, D]`` into ``k`` centroids seeded from ``generator`` (CPU).

    Starts from ``k`` distinct random rows (drawn with replacement when ``M < k``); a cluster that
    ends up empty keeps its previous centroid. Returns ``(centroids [k, D], counts [k])``.
    """
    if x.shape[0] == 0:
        raise ValueError("k-means needs at least one frame")
    if x.shape[0] >= k:
        pick = torch.randperm(x.shape[0], generator=generator)[:k]
    else:
        pick = torch.randint(x.shape[0], (k,), generator=generator)
    centroids = x[pick.to(x.device)].clone()
    counts = torch.zeros(k, dtype=x.dtype, device=x.device)
    for _ in range(max(iters, 1)):
        assign = nearest_codeword(x, centroids)
        counts = torch.zeros(k, dtype=x.dtype, device=x.device).index_add_(0, assign, torch.ones_like(assign, dtype=x.dtype))
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        used = counts > 0
        centroids[used] = sums[used] / counts[used].unsqueeze(-1)
    return centroids, counts


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t


class ResidualVQ(torch.nn.Module):
    """Residual VQ over the last axis: ``num_codebooks`` codebooks of ``codebook_size`` codewords."""

    def __init__(
        self,
        dim: int = 64,
        num_codebooks: int = 2,
        codebook_size: int = 256,
        decay: float = 0.99,
        epsilon: float = 1.0e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 1.0,
        commitment_weight: float = 0.25,
        seed: int = 0,
    ):
        super().__init__()
        if dim < 1 or num_codebooks < 1 or codebook_size < 2:
            raise ValueError(f"RVQ needs dim >= 1, num_codebooks >= 1 and codebook_size >= 2; got dim={dim}, "
                             f"num_codebooks={num_codebooks}, codebook_size={codebook_size}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"RVQ decay must be in [0, 1), got {decay}")
        # One code channel per codebook; also checks that the joint index fits in int64.
        resolve_levels([[codebook_size] for _ in range(num_codebooks)])
        self.dim = dim
        self.num_codebooks = num_codebooks
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold
        self.commitment_weight = commitment_weight
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        init = torch.randn(num_codebooks, codebook_size, dim, generator=gen)
        self.register_buffer("codebooks", init)
        self.register_buffer("cluster_size", torch.ones(num_codebooks, codebook_size))
        self.register_buffer("embed_sum", init.clone())
        # Float, not bool: ESPnet's checkpoint averaging divides every non-integer buffer.
        self.register_buffer("initted", torch.tensor(0.0 if kmeans_init else 1.0))

    # -- the code interface shared with FSQ --
    @property
    def levels(self) -> list[int]:
        """Values each code channel (one per codebook) takes."""
        return [self.codebook_size] * self.num_codebooks

    @property
    def groups(self) -> list[list[int]]:
        """Each codebook is its own group."""
        return [[self.codebook_size] for _ in range(self.num_codebooks)]

    def joint_index(self, codes: torch.Tensor) -> torch.Tensor:
        """Joint int64 index over all codebooks of codes ``[..., num_codebooks]``."""
        return codes_to_index(codes, self.levels)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_codebooks={self.num_codebooks}, codebook_size={self.codebook_size}, "
                f"decay={self.decay}, dead_code_threshold={self.dead_code_threshold}")

    @torch.no_grad()
    def set_codebooks(self, codebooks: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Set all codebooks ``[N, K, dim]`` and matching EMA statistics (``counts`` default 1 each)."""
        if codebooks.shape != self.codebooks.shape:
            raise ValueError(f"codebooks must have shape {tuple(self.codebooks.shape)}, got {tuple(codebooks.shape)}")
        sizes = torch.ones_like(self.cluster_size) if counts is None else counts.to(self.cluster_size)
        self.codebooks.copy_(codebooks)
        self.cluster_size.copy_(sizes)
        self.embed_sum.copy_(codebooks * sizes.unsqueeze(-1))
        self.initted.fill_(1.0)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the codewords of ``codes [..., n]`` (the first ``n <= num_codebooks`` stages)."""
        n = codes.shape[-1]
        if n > self.num_codebooks:
            raise ValueError(f"codes have {n} codebooks, the RVQ has {self.num_codebooks}")
        out = torch.zeros(*codes.shape[:-1], self.dim, dtype=self.codebooks.dtype, device=codes.device)
        for stage in range(n):
            out = out + self.codebooks[stage][codes[..., stage].clamp(0, self.codebook_size - 1)]
        return out

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantize ``z [..., dim]``; ``mask [...]`` (True on valid frames) limits what trains the codebooks.

        Returns a QuantizerOutput: the sum of codewords with a straight-through gradient, int64 codes
        ``[..., num_codebooks]`` and the unweighted commitment loss. In training mode the codebooks are initialised (first call) and
        updated in place.
        """
        if z.shape[-1] != self.dim:
            raise ValueError(f"RVQ expects {self.dim} channels on the last axis, got {z.shape[-1]}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.dim).float()
        valid = torch.ones(flat.shape[0], dtype=torch.bool, device=z.device) if mask is None else mask.reshape(-1)
        update = self.training and bool(valid.any())
        if update and float(self.initted) == 0.0:
            self._kmeans_init(flat[valid].detach())
        residual = flat
        quant = torch.zeros_like(flat)
        codes, commit = [], flat.new_zeros(())
        n_valid = valid.sum().clamp(min=1) * self.dim
        for stage in range(self.num_codebooks):
            idx = nearest_codeword(residual.detach(), self.codebooks[stage])
            q = self.codebooks[stage][idx]
            commit = commit + ((residual - q).pow(2) * valid.unsqueeze(-1)).sum() / n_valid
            if update:
                self._ema_update(stage, residual.detach()[valid], idx[valid])
            quant = quant + q
            residual = residual - q
            codes.append(idx)
        out = flat + (quant - flat).detach()  # straight-through: identity gradient to z
        return QuantizerOutput(out.to(z.dtype).reshape(*lead, self.dim), torch.stack(codes, -1).reshape(*lead, -1),
                               commit)

    @torch.no_grad()
    def _kmeans_init(self, frames: torch.Tensor) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        residual = frames
        books, counts = [], []
        for _ in range(self.num_codebooks):
            centroids, count = kmeans(residual, self.codebook_size, self.kmeans_iters, gen)
            books.append(centroids)
            counts.append(count.clamp(min=1.0))  # an empty cluster starts with one virtual member
            residual = residual - centroids[nearest_codeword(residual, centroids)]
        self.set_codebooks(torch.stack(books), torch.stack(counts))

    @torch.no_grad()
    def _ema_update(self, stage: int, residual: torch.Tensor, idx: torch.Tensor) -> None:
        k = self.codebook_size
        counts = torch.zeros(k, device=residual.device).index_add_(0, idx, torch.ones_like(idx, dtype=torch.float))
        sums = torch.zeros(k, self.dim, device=residual.device).index_add_(0, idx, residual)
        counts, sums = _all_reduce(counts), _all_reduce(sums)
        size, total = self.cluster_size[stage], self.embed_sum[stage]
        size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        total.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        n = size.sum()
        smoothed = (size + self.epsilon) / (n + k * self.epsilon) * n  # Laplace smoothing
        self.codebooks[stage].copy_(total / smoothed.unsqueeze(-1))
        if self.dead_code_threshold > 0 and residual.shape[0] > 0:
            dead = (size < self.dead_code_threshold).nonzero().flatten()
            if dead.numel():
                pick = torch.randint(residual.shape[0], (dead.numel(),), device=residual.device)
                self.codebooks[stage][dead] = residual[pick]
                # Restart the EMA of a replaced code at the threshold, consistent with its new codeword.
                size[dead] = self.dead_code_threshold
                total[dead] = residual[pick] * self.dead_code_threshold
