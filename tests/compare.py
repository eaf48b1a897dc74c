"""The one comparison of two computation paths that should give the same numbers.

Engine against the plain module, channels-last against NCHW, attention in chunks against whole, compiled against
eager, two ranks against one, ONNX Runtime against PyTorch, a loss recorded on another machine against here: each
pair sums the same terms in another order, so float32 rounding alone separates them, and by an amount that grows
with the size of the values. CI runs on Intel with AMX, Intel without it and AMD Zen 4, whose kernels block and
vectorise their sums differently, so an absolute bound such as 1e-6 that holds on one of them fails on another
(a recurrent RLSP test failed on Zen 4 at 8.6e-5 > 1e-5: its outputs reach tens, so that is under 1e-5 of them).

The bound, for tensors ``actual`` and ``expected``::

    max |actual - expected| <= rtol * max(max |expected|, floor)

Why rtol = 1e-4 by default: float32 keeps 24 bits, eps = 2**-23 ~ 1.2e-7. A K-term sum in another order moves its
result by about sqrt(K) eps times the size of its terms (K eps at worst): a 3x3 convolution over 64 channels has
K = 576, ~3e-6 relative. The rounding of each layer feeds the next, so a network of tens of layers, or a
recurrence over tens of frames, multiplies that by tens: a few 1e-5 relative at worst, and under 1e-5 was
measured across CPUs. 1e-4 keeps a margin of 3x to 10x over that, while a real mistake (a wrong frame, a wrong pad,
a layout or pixel-shuffle order error, a path that ignores a setting) moves values by 1e-2 of their size or more.
For a short computation (a few elementwise operations, one optimiser step) pass a smaller rtol: a few eps per
operation, e.g. 1e-6.

Why floor = 1: vsrkit's images are in [0, 1] and a network's activations are of the order of its input, so the
terms its sums round are of order one even where an output comes out near zero (a residual, a dark region): the
error does not shrink with the output. The floor keeps the bound at rtol (absolute) for such tensors, which for
[0, 1] images is the golden README's 1e-4. For tensors that are small by nature, whose terms are small too
(gradients, weight steps, losses), pass ``floor=0`` and the bound is purely relative.

Golden cases made by the official code are not compared here: they use ``golden.assert_close`` with the golden
README's absolute 1e-4 (or the case's own tolerance). Results that are exact by design (the same computation path,
such as resuming against an uninterrupted run) stay compared exactly.
"""

from __future__ import annotations

import torch

RTOL = 1e-4
FLOOR = 1.0


def assert_close_rel(actual, expected, rtol: float = RTOL, *, floor: float = FLOOR, what: str = "output") -> None:
    """Max abs error <= ``rtol * max(max |expected|, floor)`` (see the module docstring); tensors or numbers."""
    a, e = _double(actual), _double(expected)
    assert tuple(a.shape) == tuple(e.shape), f"{what}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    assert torch.isfinite(a).all() and torch.isfinite(e).all(), f"{what}: not finite"
    scale = max(e.abs().max().item() if e.numel() else 0.0, floor)
    err = (a - e).abs().max().item() if e.numel() else 0.0
    assert err <= rtol * scale, (f"{what}: max abs error {err:.3g} > {rtol:g} x {scale:.3g} "
                                 f"(relative {err / scale if scale else float('inf'):.3g})")


def _double(v) -> torch.Tensor:
    """A tensor, a number or a list of numbers as float64 (Python floats are not rounded to float32 first)."""
    return v.detach().double() if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)
