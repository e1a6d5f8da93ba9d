"""Fake quantizers with straight-through gradients: per-channel weights, PACT activations, bias."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def weight_grid(bits: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Constants of the weight grid per precision, rows: max(2^p-1, 1), p > 0, lowest code, highest code."""
    bits = bits.to(torch.float64)
    nonzero = (bits > 0).to(torch.float64)
    levels = (2.0**bits - 1).clamp_min(1)
    lo = -(2.0 ** (bits - 1)).floor() * nonzero
    hi = (2.0 ** (bits - 1) - 1).clamp_min(0) * nonzero
    return torch.stack([levels, nonzero, lo, hi]).to(dtype)


def weight_codes(w: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """Integer codes (as floats) of the weights at every precision, shape (precisions, *w.shape), and the grid step
    of each precision and output channel.

    Symmetric per-output-channel min-max grid (scale 2m/(2^p-1), m = max|W_c|, 1 if 0) clamped to
    [-2^(p-1), 2^(p-1)-1]; precision 0 gives code 0.
    """
    m = w.detach().abs().flatten(1).amax(dim=1)
    scale = (2 * torch.where(m == 0, 1.0, m))[None, :] / grid[0][:, None]
    view = scale.shape + (1,) * (w.dim() - 1)
    bound = (grid.shape[1],) + (1,) * w.dim()
    codes = torch.clamp(torch.round(w.detach()[None] / scale.view(view)), grid[2].view(bound), grid[3].view(bound))
    return codes, scale


def quantize_weight_stack(w: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """Dequantized weights at every precision at once, shape (precisions, *w.shape), and their scales (0 for the
    0-bit precision, whose weights are exact zeros). No gradient: callers attach the straight-through path."""
    codes, scale = weight_codes(w, grid)
    return codes * scale.view(scale.shape + (1,) * (w.dim() - 1)), scale * grid[1][:, None]


def mix_weights(w: Tensor, theta: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """Effective weight sum_j theta_j,c Q_pj(W)_c (one op over all precisions) and the mixed scale per channel.

    The gradient reaches theta through Q and w through a straight-through identity.
    """
    q, scale = quantize_weight_stack(w, grid)
    theta = theta.expand(scale.shape)
    mixed = (theta.view(q.shape[:2] + (1,) * (w.dim() - 1)) * q).sum(0) + (w - w.detach())
    return mixed, (theta * scale).sum(0)


def quantize_bias(b: Tensor, scale: Tensor) -> Tensor:
    """32-bit bias on the grid scale = s_in * s_w (per channel); a channel with scale 0 gets exactly 0."""
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.where(scale == 0, torch.zeros_like(b), torch.round(b.detach() / safe) * scale)
    return q + (b - b.detach()) * (scale != 0)


class _Pact(torch.autograd.Function):
    """PACT fake quantization: round on the grid clip/levels inside [lo, clip]; gradients as PACT defines them.

    Written with in-place ops and PyTorch's fused hardtanh/threshold backward kernels: each is one pass
    over the activation, which is what the step time of a quantized network is made of.
    """

    @staticmethod
    def forward(ctx, x: Tensor, clip: Tensor, levels: float, signed: bool) -> Tensor:
        c = float(clip)
        lo = -c if signed else 0.0
        scale = c / levels
        y = torch.clamp(x, lo, c).div_(scale).round_().mul_(scale)
        ctx.bounds = (lo, c)
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        lo, c = ctx.bounds
        grad_x = torch.ops.aten.hardtanh_backward(grad, x, lo, c)
        if lo < 0:
            grad_clip = torch.dot((grad - grad_x).flatten(), x.sign().flatten())
        else:
            just_below = torch.nextafter(torch.tensor(c, dtype=x.dtype), torch.tensor(-math.inf, dtype=x.dtype))
            grad_clip = torch.ops.aten.threshold_backward(grad, x, just_below.item()).sum()  # x >= clip
        return grad_x, grad_clip.to(grad.dtype).reshape(()), None, None


def pact_levels(bits: int, signed: bool) -> int:
    """Number of grid steps between 0 and the clip: 2^p-1 unsigned, 2^(p-1)-1 signed."""
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def pact(x: Tensor, clip: Tensor, bits: int, signed: bool = False) -> Tensor:
    """PACT activation quantizer: unsigned on [0, clip] with 2^p-1 steps, or signed on [-clip, clip]."""
    return _Pact.apply(x, clip, float(pact_levels(bits, signed)), signed)


class ActivationQuantizer(nn.Module):
    """A quantized activation tensor: one learnable PACT clip per precision, mixed by theta when searched."""

    def __init__(self, bits: tuple[int, ...], signed: bool, clip: float = 6.0):
        super().__init__()
        self.signed = signed
        self.bits = tuple(bits)
        self.register_buffer("levels", torch.tensor([float(pact_levels(b, signed)) for b in bits]),
                             persistent=False)
        self.clip = nn.Parameter(torch.full((len(bits),), float(clip)))
        self.theta: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if len(self.bits) == 1:
            return pact(x, self.clip[0], self.bits[0], self.signed)
        theta = self.theta.to(x.dtype)
        out = theta[0] * pact(x, self.clip[0], self.bits[0], self.signed)
        for i in range(1, len(self.bits)):
            out = out + theta[i] * pact(x, self.clip[i], self.bits[i], self.signed)
        return out

    def scale(self) -> Tensor:
        """Effective grid step: the theta-weighted mean of the per-precision steps clip/levels."""
        steps = self.clip / self.levels
        if len(self.bits) == 1:
            return steps[0]
        return (self.theta.to(steps.dtype) * steps).sum()

    def __getstate__(self):
        return {**super().__getstate__(), "theta": None}

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}"
