"""Fake quantizers with straight-through gradients: per-channel weights, PACT activations, bias."""
from __future__ import annotations

import itertools
import logging
import os
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


INT32_RANGE = (-(2.0**31), 2.0**31 - 128)  # int32's range, as far as float32 holds it


def _bias_codes(b: Tensor, scale: Tensor, kept: Tensor) -> Tensor:
    return torch.clamp(torch.round(b.detach() / torch.where(kept, scale, 1.0).detach()), *INT32_RANGE) * kept


def bias_codes(b: Tensor, scale: Tensor) -> Tensor:
    """Integer codes (as floats) of a bias on the grid `scale`, saturating at int32's range; scale 0 gives 0.

    No gradient: a nearly pruned channel in a search has a tiny mixed scale, and b / scale would overflow (and
    its derivative 0 * inf turn the precision logits and clips into NaN)."""
    return _bias_codes(b, scale, scale != 0)


def quantize_bias(b: Tensor, scale: Tensor) -> Tensor:
    """32-bit bias on the grid scale = s_in * s_w (per channel); a channel with scale 0 gets exactly 0."""
    kept = scale != 0
    return _bias_codes(b, scale, kept) * scale + (b - b.detach()) * kept


def _grid(clip: Tensor, levels: int, signed: bool) -> tuple[Tensor, Tensor]:
    """Lower bound and step of a PACT grid; the step rounded to float32 from double, as ONNX stores it."""
    return (-clip if signed else torch.zeros_like(clip)), (clip.double() / levels).to(clip.dtype)


def pact_values(x: Tensor, clips: Tensor, theta: Tensor | None, levels: tuple[int, ...], signed: bool) -> Tensor:
    """sum_i theta_i * round(clamp(x, lo_i, clip_i) / step_i) * step_i over the precisions (theta None: one)."""
    out = None
    for i, level in enumerate(levels):
        lo, step = _grid(clips[i], level, signed)
        q = torch.round(torch.clamp(x, lo, clips[i]) / step) * step
        q = q if theta is None else q * theta[i]
        out = q if out is None else out + q
    return out


def pact_gradients(grad: Tensor, x: Tensor, clips: Tensor, theta: Tensor | None, levels: tuple[int, ...],
                   signed: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """PACT's gradients: to x where lo < x < clip (straight through), to each clip the gradient of the values it
    clipped (signed: with their sign), to each theta_i the gradient times the values quantized at precision i."""
    grad_x, grad_clips, grad_theta = None, [], []
    for i, level in enumerate(levels):
        clip = clips[i]
        if signed:
            inside = x.abs() < clip
            grad_clip = torch.where(inside, 0.0, grad * torch.sign(x)).sum()
        else:
            inside = (x > 0) & (x < clip)
            grad_clip = torch.where(x >= clip, grad, 0.0).sum()
        part = torch.where(inside, grad, 0.0)
        if theta is not None:
            lo, step = _grid(clip, level, signed)
            grad_theta.append((grad * (torch.round(torch.clamp(x, lo, clip) / step) * step)).sum())
            part, grad_clip = part * theta[i], grad_clip * theta[i]
        grad_x = part if grad_x is None else grad_x + part
        grad_clips.append(grad_clip)
    return grad_x, torch.stack(grad_clips), None if theta is None else torch.stack(grad_theta)


_kernels: dict[tuple, object] = {}
# Threads are read when a kernel runs, not fixed when it is compiled: otherwise a kernel compiled at one thread count,
# or first called on a small tensor (which it then sums serially), is reused from the compiler's on-disk cache by
# every later process, and a record's last bits would depend on what this machine compiled before. On CUDA the
# compiler would otherwise divide approximately and flush subnormals to zero, so a compiled round(x / step) could land
# on the other side of a half-step from plain PyTorch and from ONNX's QuantizeLinear.
KERNEL_OPTIONS = {"cpp.dynamic_threads": True, "eager_numerics.division_rounding": True,
                  "eager_numerics.disable_ftz": True}


class _NoCudaNotice(logging.Filter):
    """Drops the compiler's notice that no CUDA runtime is found, which it prints when building a CPU kernel."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No CUDA runtime is found" not in record.getMessage()


logging.getLogger("torch.utils.cpp_extension").addFilter(_NoCudaNotice())


def _own_code(fn: Callable, name: str) -> Callable:
    """`fn` with a code object of its own named `name`: the compiler caches (and caps its recompilations) per code
    object, so closures sharing one would fall back to uncompiled code after a few grids or networks."""
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, None, fn.__closure__)


def _kernel(fn, levels: tuple[int, ...], signed: bool):
    """`fn` for one grid (levels, signed), compiled once for every input shape: one fused pass over the tensor for
    all precisions, the grid constants folded in (no Python number is read from a tensor). Plain PyTorch where
    compiling is switched off (JOINT_COMPILE=0) or fails (no C++ compiler, say)."""
    key = (fn, levels, signed, compile_mode())
    if key not in _kernels:
        def grid_fn(*tensors):
            return fn(*tensors, levels, signed)
        grid_fn = _own_code(grid_fn, f"pact_{fn.__name__}_{'_'.join(map(str, levels))}_{int(signed)}")
        _kernels[key] = grid_fn if compile_mode() == "0" else \
            torch.compile(grid_fn, dynamic=True, options=KERNEL_OPTIONS)
    return _kernels[key]


_plain: set[tuple] = set()  # kernels whose compilation failed: they run uncompiled for the rest of the process
_used: set[tuple] = set()  # kernels called since track_kernels()
COMPILE_MODES = ("0", "1", "net")


_profile_modes = ["1"]  # the compile mode of the profile whose run is training, innermost last


def compile_mode() -> str:
    """JOINT_COMPILE if set, else the training profile's mode (1 outside a run): 0 plain PyTorch; 1 the activation
    quantizer's compiled kernels; net: these, and every training step's forward and backward compiled whole (faster
    steps, tens of seconds to compile each network, other last bits)."""
    mode = os.environ.get("JOINT_COMPILE", _profile_modes[-1])
    if mode not in COMPILE_MODES:
        raise ValueError(f"JOINT_COMPILE must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
    return mode


@contextmanager
def profile_compile(mode: str) -> Iterator[None]:
    """Within: `mode` (a profile's) is the compile mode wherever JOINT_COMPILE does not name one."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"a profile's compile must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
    _profile_modes.append(mode)
    try:
        yield
    finally:
        _profile_modes.pop()


def track_kernels() -> None:
    """Start noting which quantizer kernels run, so that compiled() speaks of what one run used."""
    _used.clear()


def compiled() -> bool:
    """Whether the activation quantizer runs compiled: every kernel called since track_kernels() did (the last bits
    differ from the plain path's)."""
    return compile_mode() != "0" and not (_used & _plain)


_regions = itertools.count()


def compile_whole(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """`model`'s forward compiled whole for training steps (JOINT_COMPILE=net): PACT's forward fuses with its
    neighbours and its backward is one call of the flat kernel. Each call compiles afresh (a code object of its own),
    so a sweep's many networks do not pile up recompilations of one shared forward."""
    def forward(x: Tensor) -> Tensor:
        return model(x)
    return compile_region(forward, f"whole_{type(model).__name__}")


def compile_region(fn: Callable, name: str) -> Callable:
    """`fn` compiled as one region under a code object of its own (`name` and a serial number, for the compiler's
    logs): a graph break or too many recompilations is an error, never a silent fallback to eager."""
    return torch.compile(_own_code(fn, f"{name}_{next(_regions)}"), fullgraph=True, options=KERNEL_OPTIONS)


def _run(fn, levels: tuple[int, ...], signed: bool, *tensors):
    kernel, key = _kernel(fn, levels, signed), (fn, levels, signed, compile_mode())
    _used.add(key)
    try:
        return kernel(*tensors)
    except torch._dynamo.exc.BackendCompilerFailed as err:
        _plain.add(key)
        warnings.warn(f"joint: compiling the activation quantizer failed ({type(err).__name__}); running it "
                      f"uncompiled, which is slower", stacklevel=2)
        _kernels[key] = lambda *t: fn(*t, levels, signed)
        return fn(*tensors, levels, signed)


class _Pact(torch.autograd.Function):
    """PACT fake quantization of one tensor at one or several precisions mixed by theta: forward and backward are
    each one fused pass over the tensor, with no value read back to the host."""

    @staticmethod
    def forward(ctx, x: Tensor, clips: Tensor, theta: Tensor | None, levels: tuple[int, ...],
                signed: bool) -> Tensor:
        ctx.save_for_backward(x, clips, theta)
        ctx.grid = (levels, signed)
        if torch.compiler.is_compiling():  # inside a net compiled whole: fused with the neighbouring operations
            return pact_values(x, *_constants(clips, theta), levels, signed)
        flat, shaped = _flat(x)
        return shaped(_run(pact_values, levels, signed, flat, *_constants(clips, theta)))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, clips, theta = ctx.saved_tensors
        if torch.compiler.is_compiling():
            grad_x, grad_clips, grad_theta = _pact_backward(grad, x, *_constants(clips, theta), list(ctx.grid[0]),
                                                            ctx.grid[1])
            return grad_x, grad_clips, None if theta is None else grad_theta, None, None
        return (*_flat_gradients(grad, x, clips, theta, *ctx.grid), None, None)


def _flat_gradients(grad: Tensor, x: Tensor, clips: Tensor, theta: Tensor | None, levels: tuple[int, ...],
                    signed: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    flat, shaped = _flat(x)
    grad_flat, _ = _flat(grad.contiguous(memory_format=_layout(x)))
    grad_x, grad_clips, grad_theta = _run(pact_gradients, levels, signed, grad_flat, flat, *_constants(clips, theta))
    return shaped(grad_x), grad_clips, grad_theta


@torch.library.custom_op("joint::pact_backward", mutates_args=())
def _pact_backward(grad: Tensor, x: Tensor, clips: Tensor, theta: Tensor | None, levels: list[int],
                   signed: bool) -> tuple[Tensor, Tensor, Tensor]:
    """PACT's backward as one opaque call inside a net compiled whole: the compiler then keeps x for it rather than
    its masks, bool tensors that the CPU compiler writes about 30x slower than floats (theta None: empty grad)."""
    grad_x, grad_clips, grad_theta = _flat_gradients(grad, x, clips, theta, tuple(levels), signed)
    return grad_x, grad_clips, clips.new_zeros(0) if grad_theta is None else grad_theta


@_pact_backward.register_fake
def _(grad: Tensor, x: Tensor, clips: Tensor, theta: Tensor | None, levels: list[int], signed: bool):
    return torch.empty_like(x), torch.empty_like(clips), clips.new_empty(0 if theta is None else theta.shape[0])


def _constants(clips: Tensor, theta: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The clips and theta as the kernels read them, detached: the compiler guards on whether an input requires
    grad, and theta stops requiring it when the search's logits freeze for the fine-tune (a recompilation)."""
    return clips.detach(), None if theta is None else theta.detach()


def _layout(x: Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def _flat(x: Tensor):
    """`x`'s elements as a 1-D view in memory order, and the function giving a 1-D result `x`'s shape and layout
    back: the compiled kernels see one dynamic length whatever the tensor (one compilation, not one per shape).
    Both are detached, so neither is a view: the compiler guards on no base tensor, and autograd lets a caller
    modify the quantizer's output in place."""
    if _layout(x) == torch.channels_last:
        n, c, h, w = x.shape
        return x.permute(0, 2, 3, 1).reshape(-1).detach(), lambda y: y.view(n, h, w, c).permute(0, 3, 1, 2).detach()
    x = x.contiguous()
    return x.view(-1).detach(), lambda y: y.view(x.shape).detach()


def pact_levels(bits: int, signed: bool) -> int:
    """Number of grid steps between 0 and the clip: 2^p-1 unsigned, 2^(p-1)-1 signed."""
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def pact(x: Tensor, clip: Tensor, bits: int, signed: bool = False) -> Tensor:
    """PACT activation quantizer: unsigned on [0, clip] with 2^p-1 steps, or signed on [-clip, clip]."""
    return _Pact.apply(x, clip.reshape(1), None, (pact_levels(bits, signed),), signed)


class ActivationQuantizer(nn.Module):
    """A quantized activation tensor: one learnable PACT clip per precision, mixed by theta when searched."""

    def __init__(self, bits: tuple[int, ...], signed: bool, clip: float = 6.0):
        super().__init__()
        self.signed = signed
        self.bits = tuple(bits)
        self._levels = tuple(pact_levels(b, signed) for b in bits)
        self.register_buffer("levels", torch.tensor(self._levels), persistent=False)
        self.clip = nn.Parameter(torch.full((len(bits),), float(clip)))
        self.theta: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        theta = None if len(self.bits) == 1 else self.theta.to(x.dtype)
        return _Pact.apply(x, self.clip, theta, self._levels, self.signed)

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
