import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from joint import SearchSpace, models, quant, searchable
from joint.quant import (ActivationQuantizer, bias_codes, mix_weights, pact, pact_gradients, pact_levels, pact_values,
                         quantize_bias, quantize_weight_stack, weight_grid)


def grid(*bits):
    return weight_grid(torch.tensor(bits))


def test_two_bit_grid_is_clamped_at_both_ends():
    w = torch.tensor([[-1.0, -0.5, 0.2, 1.0]])  # m = 1, scale = 2/3, codes in [-2, 1]
    q, scale = quantize_weight_stack(w, grid(2))
    assert scale.item() == pytest.approx(2 / 3)
    assert q[0, 0].tolist() == pytest.approx([-4 / 3, -2 / 3, 0.0, 2 / 3])


def test_eight_and_four_bit_codes():
    w = torch.tensor([[-1.0, 0.5, 1.0]])  # scale 2/255; +m would round to 128 and is clamped to 127
    q, scale = quantize_weight_stack(w, grid(8))
    assert scale.item() == pytest.approx(2 / 255)
    assert (q[0, 0] / scale[0, 0]).round().tolist() == [-127.0, 64.0, 127.0]
    q4, s4 = quantize_weight_stack(torch.tensor([[-0.3, 1.0]]), grid(4))  # scale 2/15: 1.0 -> 7.5 -> 7
    assert (q4[0, 0] / s4[0, 0]).round().tolist() == [-2.0, 7.0]


def test_zero_bits_give_exact_zeros_and_zero_scale():
    w = torch.randn(5, 3, 3, 3)
    q, scale = quantize_weight_stack(w, grid(0, 8))
    assert torch.equal(q[0], torch.zeros_like(w))
    assert torch.equal(scale[0], torch.zeros(5))
    assert (q[1] != 0).any()


def test_stack_matches_single_precision_calls():
    w = torch.randn(4, 6)
    q, scale = quantize_weight_stack(w, grid(0, 2, 4, 8))
    for i, b in enumerate((0, 2, 4, 8)):
        qi, si = quantize_weight_stack(w, grid(b))
        assert torch.equal(q[i], qi[0]) and torch.equal(scale[i], si[0])


def test_one_hot_mix_is_the_chosen_quantization_and_gradients_flow():
    w = torch.randn(3, 4, requires_grad=True)
    g = grid(0, 2, 8)
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    mixed, scale = mix_weights(w, theta, g)
    q, s = quantize_weight_stack(w, g)
    assert torch.equal(mixed[0], torch.zeros(4))
    assert torch.equal(mixed[1], q[1, 1]) and torch.equal(mixed[2], q[2, 2])
    assert torch.equal(scale, torch.stack([s[0, 0], s[1, 1], s[2, 2]]))
    mixed.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight-through
    assert torch.allclose(theta.grad, q.sum(-1))  # d/dtheta_j,c = sum of Q_j row c


def test_pact_unsigned_values_and_gradients():
    x = torch.tensor([-1.0, 0.2, 0.5, 1.4, 2.9, 4.0], requires_grad=True)
    clip = torch.tensor(3.0, requires_grad=True)
    y = pact(x, clip, 2)  # step 1.0 on [0, 3]
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 3.0, 3.0]
    y.backward(torch.arange(1.0, 7.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0]
    assert clip.grad.item() == 6.0


def test_pact_signed_keeps_negative_values():
    x = torch.tensor([-5.0, -1.2, 0.4, 2.0, 7.0], requires_grad=True)
    clip = torch.tensor(4.0, requires_grad=True)
    y = pact(x, clip, 3, signed=True)  # 3 steps of 4/3 on each side
    assert y.tolist() == pytest.approx([-4.0, -4 / 3, 0.0, 8 / 3, 4.0])
    y.backward(torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0]))
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert clip.grad.item() == pytest.approx(2.0 - 1.0)


def test_bias_on_the_product_grid_and_zero_scale_gives_zero():
    b = torch.tensor([0.33, -0.71, 5.0], requires_grad=True)
    scale = torch.tensor([0.1, 0.25, 0.0])
    q = quantize_bias(b, scale)
    assert q.tolist() == pytest.approx([0.3, -0.75, 0.0])
    q.sum().backward()
    assert b.grad.tolist() == [1.0, 1.0, 0.0]


def test_a_nearly_pruned_channels_bias_saturates_and_keeps_finite_gradients():
    b = torch.tensor([0.33, -0.71, 0.5], requires_grad=True)
    scale = torch.tensor([0.1, 1e-42, 0.25], requires_grad=True)  # a mixed scale almost all on the 0-bit choice
    q = quantize_bias(b, scale)
    q.sum().backward()
    assert torch.isfinite(q).all() and torch.isfinite(scale.grad).all() and torch.isfinite(b.grad).all()
    assert bias_codes(b, scale).tolist() == [3.0, quant.INT32_RANGE[0], 2.0]
    assert scale.grad.tolist() == [3.0, quant.INT32_RANGE[0], 2.0]  # d(code * scale)/d scale: the code
    assert q[0].item() == pytest.approx(0.3) and q[2].item() == 0.5


def test_mixed_activation_quantizer_is_theta_weighted():
    quant = ActivationQuantizer((2, 8), signed=False, clip=3.0)
    quant.theta = torch.tensor([0.25, 0.75])
    x = torch.linspace(-1, 4, 11)
    expected = 0.25 * pact(x, torch.tensor(3.0), 2) + 0.75 * pact(x, torch.tensor(3.0), 8)
    assert torch.allclose(quant(x), expected)
    assert quant.scale().item() == pytest.approx(0.25 * 1.0 + 0.75 * 3 / 255)


def test_pact_clip_gets_the_gradient_of_values_exactly_at_the_clip():
    x = torch.tensor([1.0, 0.5], requires_grad=True)
    clip = torch.tensor(1.0, requires_grad=True)
    pact(x, clip, 8).backward(torch.tensor([2.0, 3.0]))
    assert clip.grad.item() == 2.0 and x.grad.tolist() == [0.0, 3.0]


def test_pact_rounds_as_onnx_quantizelinear_does():
    # QuantizeLinear: round_half_to_even(x / scale) with scale = float32(clip / levels); a product with the reciprocal
    # rounds differently near half steps, so the exported file would not compute what the model computed
    clip, levels = 6.0, 255
    scale = torch.tensor(clip / levels, dtype=torch.float32)
    x = ((torch.arange(200_000) % 250 + 0.5) * scale + torch.randn(200_000) * 1e-6).float()
    expected = torch.round(torch.clamp(x, 0, clip) / scale) * scale
    assert torch.equal(pact(x, torch.tensor(clip), 8), expected)


def reference_pact(x, clip, levels, signed):
    """The quantizer before it was fused (hardtanh/threshold backward kernels, a Python float clip): the formulation
    the fused one must reproduce."""
    class Reference(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, clip):
            c = float(clip)
            lo = -c if signed else 0.0
            ctx.save_for_backward(x)
            ctx.bounds = (lo, c)
            return torch.clamp(x, lo, c).div_(c / levels).round_().mul_(c / levels)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            lo, c = ctx.bounds
            grad_x = torch.ops.aten.hardtanh_backward(grad, x, lo, c)
            if signed:
                return grad_x, torch.dot((grad - grad_x).flatten(), x.sign().flatten())
            below = torch.nextafter(torch.tensor(c), torch.tensor(-math.inf)).item()
            return grad_x, torch.ops.aten.threshold_backward(grad, x, below).sum()
    return Reference.apply(x, clip)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", [(8,), (2, 4, 8)])
def test_fused_quantizer_gives_the_values_and_gradients_of_the_unfused_one(signed, bits):
    torch.manual_seed(0)
    x = (torch.randn(8, 16, 12, 12) * 3).requires_grad_()
    clips = torch.tensor([2.0, 3.5, 5.0][-len(bits):], requires_grad=True)
    theta = torch.tensor([0.2, 0.3, 0.5][-len(bits):], requires_grad=True)
    with torch.no_grad():  # values exactly at a clip get the clip's gradient
        x[0, 0, 0, :len(bits)] = clips
        x[0, 0, 1, :len(bits)] = -clips
    quant = ActivationQuantizer(bits, signed)
    with torch.no_grad():
        quant.clip.copy_(clips)
    quant.theta = theta
    grad = torch.randn_like(x)
    fused = quant(x)
    fused.backward(grad)
    got = x.grad.clone(), quant.clip.grad.clone(), None if len(bits) == 1 else theta.grad.clone()
    x.grad, theta.grad = None, None
    c = clips.detach().requires_grad_()
    parts = [reference_pact(x, c[i], float(pact_levels(b, signed)), signed) for i, b in enumerate(bits)]
    reference = parts[0] if len(bits) == 1 else sum(theta[i] * parts[i] for i in range(len(bits)))
    reference.backward(grad)
    assert torch.equal(fused, reference) if len(bits) == 1 else torch.allclose(fused, reference, atol=1e-6)
    assert torch.allclose(got[0], x.grad, atol=1e-6) and torch.allclose(got[1], c.grad, rtol=1e-5, atol=1e-4)
    if len(bits) > 1:
        assert torch.allclose(got[2], theta.grad, rtol=1e-5, atol=1e-3)


def test_the_plain_functions_are_the_compiled_ones():
    torch.manual_seed(1)
    x, grad = torch.randn(4, 8, 6, 6) * 2, torch.randn(4, 8, 6, 6)
    clips, theta, levels = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.1, 0.6, 0.3]), (3, 15, 255)
    assert torch.equal(quant._run(pact_values, levels, False, x, clips, theta),
                       pact_values(x, clips, theta, levels, False))
    for a, b in zip(quant._run(pact_gradients, levels, True, grad, x, clips, theta),
                    pact_gradients(grad, x, clips, theta, levels, True)):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_quantized_output_can_be_modified_in_place(channels_last):
    x = torch.randn(2, 4, 3, 3).requires_grad_()
    inp = x.to(memory_format=torch.channels_last) if channels_last else x
    out = ActivationQuantizer((8,), signed=True)(inp)
    out += 1.0  # a residual block adding in place; autograd refuses this on a view made inside a Function
    out.sum().backward()
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.equal(x.grad, torch.ones_like(x))


def test_every_grid_keeps_its_compiled_kernel(caplog):
    x = torch.randn(4, 8, 5, 5).requires_grad_()
    for signed in (False, True):
        for bits in [(2,), (4,), (8,), (2, 4), (4, 8), (2, 4, 8)]:
            quant = ActivationQuantizer(bits, signed)
            quant.theta = None if len(bits) == 1 else torch.full((len(bits),), 1 / len(bits))
            quant(x).sum().backward()
    assert not [r for r in caplog.records if "recompile" in r.getMessage()], \
        "a kernel fell back to uncompiled code after too many recompilations"


KERNEL_SUMS = """
import sys, torch
torch.set_num_threads(int(sys.argv[2]))
from joint import quant
g = torch.Generator().manual_seed(0)
x, grad = torch.randn(2, 300_000, generator=g)
clips, theta = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0.2, 0.3, 0.5])
if sys.argv[1] == "small-first":  # a first call on few elements used to compile a kernel that sums serially
    quant._run(quant.pact_gradients, (3, 15, 255), False, grad[:700], x[:700], clips, theta)
sums = [s for n in (3000, 300_000) for s in quant._run(quant.pact_gradients, (3, 15, 255), False, grad[:n], x[:n],
                                                        clips, theta)[1:]]
print(torch.cat(sums).tolist())
"""


def _kernel_sums(cache: Path, threads: int, first: str = "large-first") -> list[float]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "JOINT_COMPILE": "1"}
    done = subprocess.run([sys.executable, "-c", KERNEL_SUMS, first, str(threads)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_compiled_sums_do_not_depend_on_what_compiled_the_kernel_before(tmp_path):
    fresh = _kernel_sums(tmp_path / "fresh", 2)
    _kernel_sums(tmp_path / "shared", 1)  # the on-disk cache now holds kernels compiled at one thread
    assert _kernel_sums(tmp_path / "shared", 2) == fresh
    assert _kernel_sums(tmp_path / "small", 2, "small-first") == fresh


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bits,signed", [(2, False), (4, True), (8, False), (8, True)])
def test_the_compiled_quantizer_rounds_half_steps_as_plain_pytorch(device, bits, signed):
    clip = torch.tensor([0.7, 1.3, 5.9], device=device)
    levels = pact_levels(bits, signed)
    step = (clip.double() / levels).float()
    k = torch.arange(-levels if signed else 0, levels, device=device, dtype=torch.float64)
    x = ((k[:, None] + 0.5) * step.double()[None, :]).float()  # every half-step of every grid, as float32 rounds it
    x = torch.cat([x, torch.nextafter(x, x + 1), torch.nextafter(x, x - 1)])
    for i, c in enumerate(clip):
        got = quant._run(pact_values, (levels,), signed, x[:, i].contiguous(), c.reshape(1), None)
        lo = -c if signed else torch.zeros_like(c)
        assert torch.equal(got, torch.round(torch.clamp(x[:, i], lo, c) / step[i]) * step[i])
        assert torch.equal(got, pact_values(x[:, i], c.reshape(1), None, (levels,), signed))


@pytest.mark.parametrize("bits", [((8,), (8,)), ((0, 2, 4, 8), (2, 4, 8))], ids=["w8a8", "w0248-a248"])
def test_a_net_compiled_whole_gives_the_eager_values_and_gradients(bits):
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    eager = searchable(models.resnet8_digits(), SearchSpace(*bits), x).train()
    whole = copy.deepcopy(eager)
    for net, forward in ((eager, eager), (whole, quant.compile_whole(whole))):
        loss = F.cross_entropy(forward(x), y) + 1e-3 * net.cost("size")
        loss.backward()
        net.loss = loss.detach()
    assert torch.allclose(eager.loss, whole.loss, rtol=1e-6)
    for (name, a), b in zip(eager.named_parameters(), whole.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:  # the compiled forward sums in another order: last bits only
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-4 * float(a.grad.abs().max())), name


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_backward_of_a_net_compiled_whole_is_a_well_formed_operator(layout):
    x, grad = torch.randn(2, 4, 5, 5).to(memory_format=layout), torch.randn(2, 4, 5, 5).to(memory_format=layout)
    for clips, theta, levels, signed in [(torch.tensor([2.0]), None, [255], False),
                                         (torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.2, 0.3, 0.5]), [3, 15, 255],
                                          True)]:
        torch.library.opcheck(quant._pact_backward, (grad, x, clips, theta, levels, signed))
        grad_x, grad_clips, grad_theta = quant._pact_backward(grad, x, clips, theta, levels, signed)
        expected = quant._flat_gradients(grad, x, clips, theta, tuple(levels), signed)
        assert torch.equal(grad_x, expected[0]) and torch.equal(grad_clips, expected[1])
        assert grad_x.is_contiguous(memory_format=layout)
        assert grad_theta.numel() == (0 if theta is None else 3)


def test_an_unknown_compile_mode_is_one_line(monkeypatch):
    monkeypatch.setenv("JOINT_COMPILE", "yes")
    with pytest.raises(ValueError, match="^JOINT_COMPILE must be one of 0, 1, net; got 'yes'$"):
        quant.compile_mode()


def test_a_profiles_compile_mode_holds_within_its_runs_unless_joint_compile_names_one(monkeypatch):
    monkeypatch.delenv("JOINT_COMPILE", raising=False)
    assert quant.compile_mode() == "1"
    with quant.profile_compile("net"):
        assert quant.compile_mode() == "net"
        with quant.profile_compile("0"):
            assert quant.compile_mode() == "0"
        assert quant.compile_mode() == "net"
        monkeypatch.setenv("JOINT_COMPILE", "1")
        assert quant.compile_mode() == "1"
    monkeypatch.delenv("JOINT_COMPILE")
    assert quant.compile_mode() == "1"
    with pytest.raises(ValueError, match="^a profile's compile must be one of 0, 1, net; got 'fast'$"):
        with quant.profile_compile("fast"):
            pass


def test_a_kernel_is_kept_per_compile_mode_and_a_record_names_the_kernels_its_run_used(monkeypatch):
    monkeypatch.setattr(quant, "_plain", set())  # this test's fallback stays in this test
    x, clip = torch.rand(4, 3) * 8, torch.tensor([6.0])
    monkeypatch.setenv("JOINT_COMPILE", "1")
    compiled_kernel = quant._kernel(quant.pact_values, (31,), False)
    monkeypatch.setenv("JOINT_COMPILE", "0")
    assert quant._kernel(quant.pact_values, (31,), False) is not compiled_kernel and not quant.compiled()
    monkeypatch.setenv("JOINT_COMPILE", "1")

    def failing(*tensors):
        raise torch._dynamo.exc.BackendCompilerFailed(lambda *a: None, RuntimeError("no C++ compiler"), None)

    monkeypatch.setitem(quant._kernels, (quant.pact_values, (7,), True, "1"), failing)
    quant.track_kernels()
    with pytest.warns(UserWarning, match="compiling the activation quantizer failed"):
        quant._run(quant.pact_values, (7,), True, x, clip, None)
    assert not quant.compiled()  # this run used a kernel that fell back
    quant.track_kernels()  # the next run uses only kernels that compiled
    pact(x, clip, 5)
    assert quant.compiled()
