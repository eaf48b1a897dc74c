"""ONNX export of every vsrkit family, and ``OnnxModel``: an exported file run by onnxruntime through
the same engine (tiles, time, colour, I/O) as the PyTorch networks.

What is exported, by the model's temporal kind (``vsrkit.models.spec``):

- ``frame`` (edge-SR, ESPCN, FSRCNN, bicubic): ``forward``; batch, height and width are dynamic;
- ``window`` (EDVR): ``forward`` on one window ``(1, n, c, h, w)``; height and width are dynamic;
- ``recurrent`` (RLSP): one ``step`` with the state as explicit inputs ``state0..`` and outputs
  ``next_state0..`` (zeros at the first frame); height and width are dynamic;
- ``bidirectional`` (BasicVSR, IconVSR) and ``sequence`` (VRT): ``forward`` on a clip of a fixed length
  and size (SpyNet's resizing to multiples of 32 is fixed at trace time); the file declares a ``sequence``
  model, so the engine runs it as a clip model (``Protocol.clip``: overlapping clips, not the two exact
  passes of the PyTorch network), tiling frames into squares of that size.

Deformable convolutions export as their sampling graph (``GridSample``, opset 17), or with
``deform_op=True`` as ONNX's ``DeformConv`` (opset 19), which onnxruntime runs natively.

The file carries the model's contract as JSON in its ``metadata_props`` (key ``vsrkit``): scale, temporal
kind, channels, size rules, protocol, the fixed size and clip length, and the state channels. ``OnnxModel``
rebuilds the ``ModelSpec`` from it, so the engine runs it without knowing it is not a PyTorch network.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsrkit.atomic import write_atomic
from vsrkit.errors import VsrkitError
from vsrkit.models.layers.dcn import onnx_deform_conv
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

META_KEY = "vsrkit"
FORMAT = 1
OPSET = 17  # GridSample needs 16
DEFORM_OPSET = 19  # DeformConv
DEFAULT_SIZE = 128  # fixed-size exports: input tile side in pixels
MAX_SIZE = 4096  # a larger tile side is no tile (4K frames are 3840 wide); the trace would need tens of GiB
MAX_FRAMES = 1000  # a clip of a sequence model is unrolled in the graph: longer videos run as overlapping clips
DEFAULT_FRAMES = 8  # clip length of bidirectional models without a protocol clip
DYNAMIC_KINDS = ("frame", "window", "recurrent")


class _Step(nn.Module):
    """A recurrent model's ``step`` with its state as plain inputs and outputs (ONNX has no tuples)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new_state = self.model.step(x, tuple(state))
        return (y, *new_state)


def _check_numbers(size: int | None, frames: int | None, clip_overlap: int | None, opset: int | None) -> None:
    """One-line errors for sizes, clip lengths and opsets that no export can have."""
    from torch.onnx import _constants

    low, high = _constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    for opt, v, lo, hi in (("--size", size, 1, MAX_SIZE), ("--frames", frames, 1, MAX_FRAMES),
                           ("--clip-overlap", clip_overlap, 0, MAX_FRAMES), ("--opset", opset, low, high)):
        if v is not None and not lo <= v <= hi:
            raise VsrkitError(f"{opt} must be between {lo} and {hi}, got {v}")


def _sample_side(spec: ModelSpec, size: int) -> int:
    m = spec.size_multiple
    side = max(size, spec.min_size)
    return -(-side // m) * m


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    size: int | None = None,
    frames: int | None = None,
    clip_overlap: int | None = None,
    deform_op: bool = False,
    opset: int | None = None,
    check: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``model`` (a vsrkit network with its ``spec``) to ``path``; returns the stored metadata, plus
    ``max_abs_error``: onnxruntime against PyTorch (fp32) on a random input when ``check``.

    ``size``: the input side of fixed-size exports (default 128), the trace size of dynamic ones (default 32);
    ``frames``: the clip length of sequence models (default: the protocol's clip, else 8); ``clip_overlap``:
    the frames neighbouring clips share when the engine runs the export (default: the protocol's, else a
    quarter of the clip). The file is written under a temporary name and renamed when complete.
    """
    try:
        import onnx  # noqa: F401  (writes the metadata)
        if check:
            import onnxruntime  # noqa: F401  (the check against PyTorch)
    except ImportError as e:
        raise VsrkitError(f"vsrkit export needs the {e.name} package (pip install 'vsrkit[onnx]')") from None
    _check_numbers(size, frames, clip_overlap, opset)
    spec: ModelSpec = model.spec
    kind = spec.temporal.kind
    model = model.eval().to("cpu")
    dynamic = kind in DYNAMIC_KINDS
    side = _sample_side(spec, size or (32 if dynamic else DEFAULT_SIZE))
    if not dynamic and side % spec.size_multiple:
        raise VsrkitError(f"--size {side} must be a multiple of {spec.size_multiple} for this model")
    g = torch.Generator().manual_seed(seed)
    c = spec.channels
    state_channels: list[int] | None = None
    out_spec = spec
    if kind == "frame":
        module, inputs = model, [torch.rand(2, c, side, side, generator=g)]
        in_names, out_names = ["x"], ["y"]
        axes = {"x": {0: "batch", 2: "height", 3: "width"}, "y": {0: "batch", 2: "out_height", 3: "out_width"}}
    elif kind == "window":
        module, inputs = model, [torch.rand(1, spec.temporal.window, c, side, side, generator=g)]
        in_names, out_names = ["x"], ["y"]
        axes = {"x": {3: "height", 4: "width"}, "y": {2: "out_height", 3: "out_width"}}
        out_spec = dataclasses.replace(spec, sliding=None)
    elif kind == "recurrent":
        x = torch.rand(1, spec.temporal.window, c, side, side, generator=g)
        with torch.no_grad():
            _, state = model.step(x, None)
        state = tuple(s + 0.1 * torch.rand(s.shape, generator=g) for s in state)  # not the zero first state
        if any(s.shape[-2:] != x.shape[-2:] for s in state):
            raise VsrkitError("export: the recurrent state must have the input frames' height and width")
        state_channels = [s.shape[1] for s in state]
        module, inputs = _Step(model), [x, *state]
        in_names = ["x"] + [f"state{i}" for i in range(len(state))]
        out_names = ["y"] + [f"next_state{i}" for i in range(len(state))]
        axes = {"x": {3: "height", 4: "width"}, "y": {2: "out_height", 3: "out_width"}}
        axes.update({n: {2: "height", 3: "width"} for n in in_names[1:] + out_names[1:]})
    else:  # sequence and bidirectional: a fixed clip
        T = frames or spec.protocol.clip or DEFAULT_FRAMES
        if T < spec.min_frames:
            raise VsrkitError(f"--frames {T}: this model needs at least {spec.min_frames} frames")
        module, inputs = model, [torch.rand(1, T, c, side, side, generator=g)]
        in_names, out_names, axes = ["x"], ["y"], None
        overlap = clip_overlap
        if overlap is None:
            overlap = spec.protocol.clip_overlap if spec.protocol.clip_overlap is not None else T // 4
        out_spec = dataclasses.replace(
            spec, temporal=Temporal("sequence"), passes=None, min_frames=T,
            protocol=dataclasses.replace(spec.protocol, clip=T, clip_overlap=min(overlap, (T - 1) // 2)),
        )
    if not dynamic:
        out_spec = dataclasses.replace(out_spec, min_size=side)
    meta = {
        "format": FORMAT,
        "model": model.spec.name or type(model).__name__,
        "exported_kind": kind,
        "spec": _spec_to_json(out_spec),
        "size": None if dynamic else side,
        "frames": inputs[0].shape[1] if kind in ("sequence", "bidirectional") else None,
        "state_channels": state_channels,
        "inputs": in_names,
        "outputs": out_names,
        "deform_op": bool(deform_op),
    }

    def write(tmp: str) -> None:
        with torch.no_grad(), onnx_deform_conv(deform_op), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints taken from shapes
            version = opset or (DEFORM_OPSET if deform_op else OPSET)
            try:
                torch.onnx.export(
                    module, tuple(inputs), str(tmp), dynamo=False, opset_version=version,
                    input_names=in_names, output_names=out_names, dynamic_axes=axes,
                    autograd_inlining=False,  # the DeformConv node stays one node
                )
            except torch.onnx.OnnxExporterError as e:  # an operator this opset does not have
                why = " ".join(str(e).split("[Caused by")[0].split())
                raise VsrkitError(f"cannot export {meta['model']} with opset {version}: {why}") from None
        import onnx

        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta)})
        onnx.save(proto, str(tmp))
        if check:
            with torch.no_grad():
                ref = module(*inputs)
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = OnnxModel(tmp).run(*inputs)
            meta["max_abs_error"] = max(float((a - b).abs().max()) for a, b in zip(got, ref))

    write_atomic(path, write)
    return meta


def _spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    t, p = spec.temporal, spec.protocol
    return {
        "scale": spec.scale,
        "temporal": {"kind": t.kind, "window": t.window, "ahead": t.ahead},
        "channels": spec.channels,
        "size_multiple": spec.size_multiple,
        "min_size": spec.min_size,
        "min_frames": spec.min_frames,
        "memory_per_pixel": spec.memory_per_pixel,
        "protocol": {"end_padding": p.end_padding, "clip": p.clip, "clip_overlap": p.clip_overlap},
    }


def _spec_from_json(d: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        scale=int(d["scale"]),
        temporal=Temporal(**d["temporal"]),
        channels=int(d["channels"]),
        size_multiple=int(d["size_multiple"]),
        min_size=int(d["min_size"]),
        min_frames=int(d["min_frames"]),
        memory_per_pixel=int(d.get("memory_per_pixel", 0)),
        protocol=Protocol(**d["protocol"]),
    )


class OnnxModel(nn.Module):
    """An exported vsrkit model run by onnxruntime, shaped like a vsrkit network: ``spec`` from the file's
    metadata, ``forward`` (frame, window and clip models) or ``step`` (recurrent models). Inputs may be on
    any device and in any precision: they are run in float32 on onnxruntime's providers and come back as
    float32 on the input's device. ``size`` is the fixed input side (None: any size)."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise VsrkitError("--backend onnxruntime needs the onnxruntime package (pip install 'vsrkit[onnx]')") from None
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers or ort.get_available_providers())
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise VsrkitError(f"{self.path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise VsrkitError(f"{self.path}: not a vsrkit export (no '{META_KEY}' metadata); make it with `vsrkit export`")
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise VsrkitError(f"{self.path}: vsrkit export format {meta.get('format')} is not supported (expected {FORMAT})")
        self.meta = meta
        self.spec = dataclasses.replace(_spec_from_json(meta["spec"]), name=f"{meta['model']} (onnx)")
        self.size: int | None = meta["size"]
        self._inputs = meta["inputs"]

    def run(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """All outputs for the inputs in the file's order, as float32 tensors on the first input's device."""
        feed = {n: np.ascontiguousarray(t.detach().float().cpu().numpy()) for n, t in zip(self._inputs, tensors)}
        dev = tensors[0].device
        return [torch.from_numpy(o).to(dev) for o in self.session.run(None, feed)]

    def _check_size(self, x: torch.Tensor) -> None:
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"{self.path.name} takes {self.size}x{self.size} inputs, got {tuple(x.shape[-2:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.temporal.kind == "recurrent":
            raise TypeError("a recurrent export runs one step at a time: use step(x, state)")
        self._check_size(x)
        return self.run(x)[0]

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        if state is None:
            b, _, _, h, w = x.shape
            state = tuple(x.new_zeros(b, ch, h, w) for ch in self.meta["state_channels"])
        y, *new_state = self.run(x, *state)
        return y, tuple(new_state)

    def extra_repr(self) -> str:
        return f"{self.path.name}, {self.spec.temporal.describe()}, x{self.spec.scale}" + (
            f", {self.size}x{self.size}" if self.size else "")
