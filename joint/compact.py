"""A trained searchable net kept compactly and reloaded exactly: the integer weights of the pruned network at their
bits (alive output and input channels only), each channel's weight range, bias codes, the chosen activation clips and
the architecture.

Reloading writes latent weights that quantize to the same codes on the same grids, so the reloaded net evaluates bit
for bit like the saved one (its argmax architecture; the search state is not kept).
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .arch import Arch
from .graph import searchable
from .plain import flattened_keep, kept_channels
from .quant import bias_codes, weight_codes, weight_grid
from .search import SearchableNet, SearchSpace

FORMAT = "joint-compact-1"


def pack_bits(codes: Tensor, bits: int) -> Tensor:
    """Codes of a signed `bits`-bit grid, `bits` bits each in a uint8 tensor."""
    unsigned = (codes.to(torch.int64) + 2 ** (bits - 1)).numpy().astype(">u2")
    planes = np.unpackbits(unsigned.view(np.uint8)).reshape(-1, 16)[:, 16 - bits:]
    return torch.from_numpy(np.packbits(planes.reshape(-1)))


def unpack_bits(packed: Tensor, bits: int, count: int) -> Tensor:
    """The `count` codes that `pack_bits` stored (int64)."""
    planes = np.unpackbits(packed.numpy())[:count * bits].reshape(count, bits)
    wide = np.concatenate([np.zeros((count, 16 - bits), np.uint8), planes], axis=1)
    return torch.from_numpy(np.packbits(wide.reshape(-1)).view(">u2").astype(np.int64) - 2 ** (bits - 1))


def _kept_inputs(net: SearchableNet, arch: Arch, name: str) -> Tensor | None:
    """Input features of a layer fed by alive channels (None: all of them, for a fixed input or a depthwise conv)."""
    wire = net.wiring[name]
    if wire.input_group is None or not net.groups[wire.input_group].prunable or wire.shape.kind == "dw":
        return None
    bits = arch.layers[net.groups[wire.input_group].layers[0]].weight_bits
    return flattened_keep(kept_channels(bits), wire.input_multiplier)


def _channels(bits: list[int], p: int) -> Tensor:
    return torch.tensor([c for c, b in enumerate(bits) if b == p])


def pack(net: SearchableNet) -> dict:
    """The compact form of `net`'s argmax architecture: a few flat tensors, read back in the order of the layers."""
    arch = net.arch()
    was_training = net.training
    net.eval()
    codes, peak_index, peak, bias_values = [], [], [], []
    with torch.no_grad():
        net._sample()
        for name in net.wiring:
            layer, bits, inputs = net.layer(name), arch.layers[name].weight_bits, _kept_inputs(net, arch, name)
            weight = layer.weight.detach()
            index = weight.abs().flatten(1).argmax(1)  # the weight that sets each channel's range, and its sign
            peak_index.append(index.to(torch.int32))
            peak.append(weight.flatten(1).gather(1, index[:, None])[:, 0])
            for p in sorted(set(bits) - {0}):
                layer_codes = weight_codes(weight[_channels(bits, p)], weight_grid(torch.tensor([p])))[0][0]
                codes.append(pack_bits((layer_codes if inputs is None else layer_codes[:, inputs]).flatten(), p))
            if layer.bias is not None:
                _, bias, w_scale = layer.effective_params()
                step = _bias_step(layer, w_scale)
                bias_values.append(bias if step is None else bias_codes(bias, step))
        clips = {key: float(net.act(key).clip[net.space.act_bits.index(b)]) for key, b in arch.activations.items()}
    net.train(was_training)
    return {"format": FORMAT, "space": asdict(net.space), "act_signed": dict(net.act_signed), "arch": arch.to_dict(),
            "clips": clips, "codes": torch.cat(codes),
            "peak_index": torch.cat(peak_index), "peak": torch.cat(peak),
            "bias": torch.cat(bias_values) if bias_values else torch.zeros(0)}


def _bias_step(layer, w_scale: Tensor) -> Tensor | None:
    """Grid step of each channel's bias (s_in * s_w, 0 for a pruned channel); None if the bias is not quantized."""
    return None if layer.in_scale is None else layer.in_scale * w_scale.expand(layer.weight.shape[0])


def _one_hot(index: Tensor, classes: int, like: Tensor) -> Tensor:
    return F.one_hot(index, classes).to(like.dtype)


def load(model: nn.Module, input_shape: tuple[int, ...], data: dict) -> SearchableNet:
    """The saved compact model as a searchable net built on `model`'s structure (its weights do not matter). No data
    is needed: the example input only decides which quantizers are signed, and that was saved."""
    _check(data)
    space = SearchSpace(**data["space"])
    for sign in (1.0, -1.0):
        net = searchable(model, space, torch.full((1, *input_shape), sign))
        if net.act_signed == data["act_signed"]:
            return unpack(net, data)
    raise ValueError("the compact model does not belong to this model: its activation quantizers differ")


def _check(data: dict) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a compact model of format {FORMAT!r}")


def unpack(net: SearchableNet, data: dict) -> SearchableNet:
    """Load `pack`'s output into `net`, a searchable net built like the saved one (the same model, search space and
    example input): logits that choose the saved architecture (frozen), the saved clips, latent weights on the saved
    grids."""
    _check(data)
    arch = Arch.from_dict(data["arch"])
    with torch.no_grad():
        for g, grp in net.groups.items():
            choice = torch.tensor([grp.bits.index(b) for b in arch.layers[grp.layers[0]].weight_bits])
            logits = net.logits[g]
            logits.copy_(_one_hot(choice[:logits.shape[1]], logits.shape[0], logits).T)
        for key, bits in arch.activations.items():
            net.act(key).clip.fill_(data["clips"][key])
            if key in net.act_logits:
                index = torch.tensor(net.space.act_bits.index(bits))
                net.act_logits[key].copy_(_one_hot(index, len(net.space.act_bits), net.act_logits[key]))
        net.eval()._sample()  # the saved choices and clips: input scales for the biases
        offsets = {"codes": 0, "peak_index": 0, "peak": 0, "bias": 0}
        for name in net.wiring:
            _restore(net, arch, name, data, offsets)
    net._cache = None
    net.freeze()  # the saved argmax architecture, in training too
    return net


def _take(data: dict, offsets: dict, key: str, count: int) -> Tensor:
    """The next `count` entries of the flat tensor data[key]."""
    start = offsets[key]
    offsets[key] = start + count
    return data[key][start:start + count]


def _restore(net: SearchableNet, arch: Arch, name: str, data: dict, offsets: dict) -> None:
    """Latent weights W' with round(W'/scale) the saved codes and max |W'_c| the saved range: codes times the scale,
    minus the range where a code sits at the bottom of the grid (only -range rounds there), and the weight that set
    the range itself."""
    layer, bits, inputs = net.layer(name), arch.layers[name].weight_bits, _kept_inputs(net, arch, name)
    weight = torch.zeros_like(layer.weight)
    index, peak = _take(data, offsets, "peak_index", len(bits)).long(), _take(data, offsets, "peak", len(bits))
    for p in sorted(set(bits) - {0}):
        channels = _channels(bits, p)
        shape = (len(channels), weight.shape[1] if inputs is None else len(inputs)) + tuple(weight.shape[2:])
        count = int(np.prod(shape))
        codes = unpack_bits(_take(data, offsets, "codes", -(-count * p // 8)), p, count).view(shape)
        rng = peak[channels].abs().view(-1, *(1,) * (weight.dim() - 1))
        value = torch.where(codes == -(2 ** (p - 1)), -rng,
                            codes.to(weight.dtype) * (2 * torch.where(rng == 0, 1.0, rng) / (2**p - 1)))
        if inputs is None:
            weight[channels] = value
        else:
            weight[channels[:, None], inputs[None, :]] = value
    alive = torch.tensor([b > 0 for b in bits])
    weight.view(weight.shape[0], -1)[alive, index[alive]] = peak[alive]
    layer.weight.copy_(weight)
    if layer.bias is not None:
        saved = _take(data, offsets, "bias", len(bits))
        layer.bias.copy_(saved)
        _, _, w_scale = layer.effective_params()
        step = _bias_step(layer, w_scale)
        if step is not None:
            layer.bias.copy_(saved * step)
