"""The OpenVINO backend: vsrkit networks converted to OpenVINO and run on the CPU, in fp32, bf16 or int8, through
the same engine (tiles, time, colour, I/O) as the PyTorch networks.

``OpenVinoModel`` wraps a vsrkit network and is shaped like one (``spec``, ``forward`` or ``step``, or the two
passes). What is converted, by the model's temporal kind (``vsrkit.models.spec``):

- ``frame``, ``window`` (``forward``) and ``recurrent`` (one ``step``, the state as explicit inputs and
  outputs, zeros at the first frame): one graph with a dynamic height and width, compiled per input shape;
- ``bidirectional`` models with BasicVSR's or IconVSR's passes (``models.basicvsr``): per frame of each pass, the
  alignment (SpyNet's flow and the warp of the propagated state: one f32 graph, or in bf16 and int8 SpyNet's
  level CNNs in bf16 with the sampling in PyTorch f32, as bf16 autocast splits it) and the body (the trunk; for the
  forward pass also the fusion and the upsampling; IconVSR's keyframe refill as a variant of the body, and
  its EDVR features as a graph of their own): static graphs per frame size. The passes run them frame by
  frame, so ``infer.twopass`` streams the model exactly as it streams the PyTorch network (any block
  length and position). At the video's ends the missing neighbour is stood in for by the frame itself and
  the state is zeros: a warp of zeros is zeros, so the result is the network's own.
- ``sequence`` models (VRT), and bidirectional models with other passes, run as fixed clips of a fixed square
  size, tiled by the engine, as ``vsrkit export`` does.

Why per-frame graphs, why the alignment apart, and why from the PyTorch module (``ov.convert_model``) rather
than from vsrkit's ONNX file: measured by ``benchmarks/bench_openvino.py`` (README, OpenVINO). Converting a
pass over a block costs time in proportion to the block's length (about half a minute a frame here: many
minutes for the engine's 24-frame blocks), and a block graph changes with the block's place (its ends, and
IconVSR's keyframes); a bf16 graph computes its sampling coordinates in bf16 too (OpenVINO's CPU plugin
honours no per-node f32 mark set from Python), which cost BasicVSR 0.09 dB, 0.01 dB with the alignment in
f32; the two conversion routes give the same graph and speed, and the ONNX one adds an export and a package.

Precision: ``fp32`` (OpenVINO's inference precision hint set to f32: on CPUs with bf16 units OpenVINO would
otherwise pick bf16 by itself), ``bf16`` (the hint set to bf16) and ``int8`` (post-training quantisation with
NNCF of the inputs each graph gets while the model runs in fp32 over calibration frames, ``quantize``; the
alignment graphs and the layers NNCF leaves alone run in f32). ``choose_precision`` settles ``auto`` and
refuses a precision whose measured loss is over its budget (``LOSS_BUDGET_DB``).

Converted models (and quantised ones) are cached as OpenVINO IR under the vsrkit cache
(``hub.download.cache_dir() / "openvino"``), keyed by the weights' digest, the model code, the converted
function, its input shapes, the precision and, for int8, the calibration frames and seed; compiled models
are cached by OpenVINO itself (its ``CACHE_DIR``) beside them. An entry whose files do not match its
recorded sha256, or that OpenVINO cannot read, is rebuilt.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsrkit.errors import VsrkitError
from vsrkit.models.spec import Block, ModelSpec, Protocol, Temporal, TwoPass

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what is cached changes meaning
PRECISIONS = ("fp32", "bf16", "int8")
LOSS_BUDGET_DB = {"bf16": 0.05, "int8": 0.1}  # the most Y PSNR (dB, vs fp32, held-out real clips) a precision may cost
BF16_MIN_SPEEDUP = 1.2  # --precision auto: bf16 must be at least this much faster than fp32 here
DEFAULT_SIZE = 128  # fixed-clip models: input tile side in pixels
DEFAULT_FRAMES = 8  # fixed-clip models without a protocol clip: clip length
CALIBRATION_FRAMES = 12  # int8: consecutive calibration frames
CALIBRATION_SIDE = 256  # int8, dynamic graphs: calibration frames are cropped to at most this side
EXTRA = "pip install 'vsrkit[openvino]'"
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}

# The measured losses of the pretrained models on this backend (Y PSNR against fp32, held-out real clips;
# benchmarks/bench_openvino.py --sections quality) are kept with their entries (``ModelEntry.losses_db``) and reach
# the spec as ``ov_bf16_loss_db`` / ``int8_loss_db`` through ``load_model``.


def require_openvino() -> Any:
    """The ``openvino`` module, or a one-line error naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise VsrkitError(f"--backend openvino needs the openvino package ({EXTRA})") from None
    return openvino


def _require_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise VsrkitError(f"--precision int8 needs the nncf package ({EXTRA})") from None
    return nncf


def cache_root() -> Path:
    """Where converted and compiled models are kept: ``<vsrkit cache>/openvino``."""
    from vsrkit.hub.download import cache_dir

    return cache_dir() / "openvino"


@functools.cache
def _core(cache: str | None) -> Any:
    ov = require_openvino()
    core = ov.Core()
    if cache:
        try:
            core.set_property({"CACHE_DIR": str(Path(cache) / "compiled")})
        except Exception as e:  # noqa: BLE001 - no blob cache is slower, not wrong
            log.warning("OpenVINO's compiled-model cache is off: %s", str(e).splitlines()[0])
    return core


# ------------------------------------------------------------------------------------------------ digests
@functools.cache
def _code_digest() -> str:
    """The model code (vsrkit/models) and this module: a converted graph is stale when they change."""
    from vsrkit._version import __version__

    h = hashlib.blake2b(digest_size=16)
    h.update(__version__.encode())
    root = Path(__file__).resolve().parents[1]
    for p in sorted((root / "models").rglob("*.py")) + [Path(__file__).resolve()]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """A digest of a network's architecture (its repr and plain attributes) and weights."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(model).__qualname__.encode())
    h.update(repr(model).encode())
    h.update(repr(sorted((k, v) for k, v in vars(model).items() if isinstance(v, (int, float, str, bool)))).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tensor_digest(t: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(tuple(t.shape)).encode())
    h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ the cache
@dataclasses.dataclass
class Stats:
    """What building a model did, for logs and tests: graphs converted from PyTorch, read from the cache,
    rebuilt from a damaged cache entry, quantised, and compiled."""

    converted: int = 0
    loaded: int = 0
    rebuilt: int = 0
    quantized: int = 0
    compiled: int = 0
    compiled_from_cache: int = 0
    seconds: float = 0.0


def _read_entry(folder: Path, core: Any) -> Any | None:
    """The IR of a cache entry, or None when there is none; raises on a damaged one."""
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    for name in ("model.xml", "model.bin"):
        if _sha256(folder / name) != meta["sha256"][name]:
            raise ValueError(f"{name} does not match its sha256")
    return core.read_model(str(folder / "model.xml"))


def _write_entry(folder: Path, model: Any, key: dict[str, Any]) -> None:
    """Save ``model`` as the cache entry ``folder``: written in a temporary folder beside it, then renamed."""
    ov = require_openvino()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        sums = {n: _sha256(tmp / n) for n in ("model.xml", "model.bin")}
        (tmp / "meta.json").write_text(json.dumps({"key": key, "sha256": sums}, indent=1))
        if folder.exists():  # a damaged entry, or another process was quicker
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError as e:  # a read-only or full cache: the model still runs, it is just not kept
        log.warning("cannot write the OpenVINO cache entry %s: %s", folder, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ one graph
def _dims(t: torch.Tensor, dynamic: Sequence[int]) -> list[int]:
    """``t``'s shape with the dimensions in ``dynamic`` (negative: from the end) as -1."""
    dyn = {d % t.dim() for d in dynamic}
    return [-1 if i in dyn else int(n) for i, n in enumerate(t.shape)]


def _convert(module: nn.Module, example: Sequence[torch.Tensor], dims: list[list[int]], via_onnx: bool = False) -> Any:
    """An OpenVINO model of ``module`` traced on ``example`` (dimensions -1 in ``dims`` stay dynamic): straight
    from PyTorch (``ov.convert_model``), or through an ONNX file (``via_onnx``, for comparison)."""
    ov = require_openvino()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values taken from shapes
        if not via_onnx:
            return ov.convert_model(module, example_input=tuple(example), input=[ov.PartialShape(d) for d in dims])
        with tempfile.TemporaryDirectory(prefix="vsrkit-ov-") as tmp:
            names = [f"in{i}" for i in range(len(example))]
            axes = {n: [i for i, v in enumerate(d) if v < 0] for n, d in zip(names, dims)}
            torch.onnx.export(module, tuple(example), f"{tmp}/m.onnx", dynamo=False, opset_version=17,
                              input_names=names, dynamic_axes={n: a for n, a in axes.items() if a})
            return ov.convert_model(f"{tmp}/m.onnx")


class Part:
    """One converted function of a network: traced from PyTorch once (or read from the cache), compiled per
    input shape at the owner's precision; for int8, quantised from calibration inputs recorded while the
    owner runs in fp32 (``record``)."""

    def __init__(self, owner: "OpenVinoModel", name: str, module: nn.Module, example: Sequence[torch.Tensor],
                 dynamic: Sequence[int] = (), precision: str | None = None):
        self.owner = owner
        self.precision = precision  # a fixed precision (None: the owner's)
        self.name = name
        self.module = module
        self.example = [t.detach().cpu().float().contiguous() for t in example]
        self.dims = [_dims(t, dynamic) for t in self.example]
        self.static = not dynamic
        self.record: list[list[np.ndarray]] | None = None  # calibration inputs, while recording
        self._ir: dict[str, Any] = {}  # "fp32" / int8 key -> ov.Model
        self._compiled: dict[tuple[Any, ...], Any] = {}  # (precision, shapes) -> infer request

    def key(self, **extra: Any) -> dict[str, Any]:
        ov = require_openvino()
        return {"format": FORMAT, "openvino": ov.get_version(), "code": _code_digest(),
                "weights": self.owner.digest, "part": self.name, "dims": self.dims, **extra}

    def _cached(self, key: dict[str, Any], build: Callable[[], Any]) -> Any:
        """The IR for ``key``: from the cache when it is there and sound, else built and saved."""
        stats, cache = self.owner.stats, self.owner.cache
        core = _core(None)
        if cache is None:
            return build()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        folder = cache / f"{self.name}-{digest}"
        try:
            ir = _read_entry(folder, core)
        except Exception as e:  # noqa: BLE001 - any damage: rebuild the entry
            self.owner.say(f"OpenVINO cache entry {folder.name} is damaged ({str(e).splitlines()[0][:80]}): rebuilding it")
            shutil.rmtree(folder, ignore_errors=True)
            stats.rebuilt += 1
            ir = None
        if ir is not None:
            stats.loaded += 1
            return ir
        ir = build()
        _write_entry(folder, ir, key)
        try:  # compile what a later run reads, so that OpenVINO's compiled-model cache serves that run too
            return _read_entry(folder, core) or ir
        except Exception:  # noqa: BLE001 - not written (read-only cache): the model in memory
            return ir

    def fp32_ir(self) -> Any:
        if "fp32" not in self._ir:
            def build() -> Any:
                t0 = time.perf_counter()
                ir = _convert(self.module, self.example, self.dims, via_onnx=self.owner.via_onnx)
                self.owner.stats.converted += 1
                self.owner.stats.seconds += time.perf_counter() - t0
                return ir
            self._ir["fp32"] = self._cached(self.key(ir="fp32", via_onnx=self.owner.via_onnx), build)
        return self._ir["fp32"]

    def int8_ir(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        """The quantised IR (for ``shapes`` when this graph is static)."""
        owner = self.owner
        at = shapes if self.static else None
        k = ("int8", at)
        if k not in self._ir:
            key = self.key(ir="int8", calibration=owner.calibration_digest, seed=owner.seed, shapes=at,
                           nncf=_require_nncf().__version__, recipe=INT8_RECIPE, via_onnx=owner.via_onnx)

            def build() -> Any:
                records = owner.calibration_inputs(self, at)
                t0 = time.perf_counter()
                ir = quantize(self.fp32_ir(), records)
                owner.stats.quantized += 1
                owner.stats.seconds += time.perf_counter() - t0
                return ir
            self._ir[k] = self._cached(key, build)
        return self._ir[k]

    def _request(self, shapes: tuple[tuple[int, ...], ...], precision: str) -> Any:
        k = (precision, shapes)
        req = self._compiled.get(k)
        if req is None:
            ir = self.int8_ir(shapes) if precision == "int8" else self.fp32_ir()
            ir = ir.clone()
            if not self.static:
                ir.reshape({ir.inputs[i].get_any_name(): list(s) for i, s in enumerate(shapes)})
            config = {"INFERENCE_PRECISION_HINT": _HINT[precision], "PERFORMANCE_HINT": "LATENCY",
                      "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(torch.get_num_threads())}
            core = _core(None if self.owner.cache is None else str(self.owner.cache))
            t0 = time.perf_counter()
            try:
                compiled = core.compile_model(ir, "CPU", config)
            except Exception as e:  # noqa: BLE001 - e.g. a damaged compiled blob: compile without the cache
                log.warning("OpenVINO compile with its cache failed (%s); compiling without it", str(e).splitlines()[0])
                compiled = _core(None).compile_model(ir, "CPU", config)
            self.owner.stats.compiled += 1
            try:
                self.owner.stats.compiled_from_cache += bool(compiled.get_property("LOADED_FROM_CACHE"))
            except Exception:  # noqa: BLE001 - an older OpenVINO without the property
                pass
            self.owner.stats.seconds += time.perf_counter() - t0
            req = self._compiled[k] = compiled.create_infer_request()
        return req

    def __call__(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """All outputs for the inputs, as float32 CPU tensors."""
        arrays = [np.ascontiguousarray(t.detach().float().cpu().numpy()) for t in tensors]
        shapes = tuple(a.shape for a in arrays)
        if self.static and [list(s) for s in shapes] != self.dims:
            raise ValueError(f"{self.name}: converted for inputs {self.dims}, got {[list(s) for s in shapes]}")
        precision = self.precision or self.owner.precision
        if self.record is not None:
            self.record.append([a.copy() for a in arrays])
            precision = "fp32"
        req = self._request(shapes, precision)
        res = req.infer(arrays)
        return [torch.from_numpy(np.array(res[o])) for o in req.model_outputs]


INT8_RECIPE = "mixed, mean-quantile activations, input convolutions in float, fast bias correction"
_PASS_THROUGH = {"Concat", "Reshape", "Transpose", "Gather", "Squeeze", "Unsqueeze", "Convert", "StridedSlice",
                 "Split", "VariadicSplit", "Slice", "Pad", "Multiply", "Add", "Subtract", "Divide"}


def input_convolutions(ir: Any) -> list[str]:
    """The convolutions that read a graph input directly (through concatenations, reshapes and the like): the
    frames and the propagated states. int8 keeps them in float: one scale per input tensor cannot hold both a
    frame in [0, 1] and features concatenated to it (measured on BasicVSR: 0.24 dB of loss, 0.18 without them)."""
    names = []
    for n in ir.get_ordered_ops():
        if n.get_type_name() not in ("Convolution", "GroupConvolution"):
            continue
        stack, seen = [n.input_value(0).get_node()], set()
        while stack:
            m = stack.pop()
            if m.get_friendly_name() in seen:
                continue
            seen.add(m.get_friendly_name())
            if m.get_type_name() == "Parameter":
                names.append(n.get_friendly_name())
                break
            if m.get_type_name() in _PASS_THROUGH:
                stack.extend(v.get_node() for v in m.input_values())
    return names


def quantize(ir: Any, records: list[list[np.ndarray]]) -> Any:
    """Post-training int8 quantisation of ``ir`` (NNCF) on the recorded inputs, in their order (deterministic:
    NNCF takes the first ``len(records)`` samples). Activation ranges from the mean of per-sample quantiles
    rather than the extremes, and the convolutions that read the graph's inputs stay in float
    (``input_convolutions``): together 0.08 dB of BasicVSR's loss instead of 0.24 (min-max, all quantised)."""
    nncf = _require_nncf()
    if not records:
        raise VsrkitError("int8 calibration recorded no inputs")
    import contextlib
    import io

    quiet = io.StringIO()  # NNCF draws progress bars on the console: not in vsrkit's output
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        nncf.set_log_level(logging.ERROR)
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        keep = input_convolutions(ir)
        advanced = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MEAN_QUANTILE)
        return nncf.quantize(ir, nncf.Dataset(records), subset_size=len(records),
                             ignored_scope=nncf.IgnoredScope(names=keep, validate=False) if keep else None,
                             preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True,
                             advanced_parameters=advanced)


# ------------------------------------------------------------------------------------------------ wrappers
class _Step(nn.Module):
    """A recurrent model's ``step`` with its state as plain inputs and outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new_state = self.model.step(x, tuple(state))
        return (y, *new_state)


class _Align(nn.Module):
    """A propagation's alignment for one frame: SpyNet's flow between ``x[1, 2, c, h, w]`` (backward: the frame,
    then the next one; forward: the previous frame, then the frame) and the propagated state warped by it, as
    ``backward_pass`` / ``forward_pass`` compute them: one f32 graph for fp32 models (``SplitAlign`` for the
    others: sampling coordinates in bf16 move pixels)."""

    def __init__(self, model: nn.Module, backward: bool):
        super().__init__()
        self.model, self.backward = model, backward

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        from vsrkit.models.basicvsr import _one_way_flows
        from vsrkit.models.layers.common import flow_warp

        flow = _one_way_flows(self.model.spynet, x, backward=self.backward)[:, 0]
        return flow_warp(state, flow.permute(0, 2, 3, 1))


class _Level(nn.Module):
    """One SpyNet level's CNN run by a ``Part`` (in place of the PyTorch module, inside SpyNet's own pyramid)."""

    def __init__(self, part: "Part"):
        super().__init__()
        self.part = part

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.part(x)[0]


class SplitAlign:
    """A propagation's alignment in bf16 (and int8) the way PyTorch's bf16 autocast runs it: SpyNet's level CNNs
    on OpenVINO at bf16, everything between them (the pyramid, the flow upsampling, the warps inside SpyNet, the
    final resize and the warp of the state) in PyTorch float32, through SpyNet's own code. The whole alignment
    graph in bf16 moves pixels (sampling coordinates in bf16: 9x PyTorch bf16's error on the warped state of a real
    frame), and in f32 it took 3.4x the time (128 against 37 ms per direction at 320x180 on an AMX CPU), 38% of
    BasicVSR's frame (``benchmarks/bench_openvino.py --sections profile``). Called like a ``Part``:
    ``(aligned,) = align(frames[b, 2, c, h, w], state)``."""

    def __init__(self, owner: "OpenVinoModel", backward: bool, levels: list["Part"]):
        self.owner, self.backward, self.levels = owner, backward, levels
        spynet = owner.torch_model.spynet
        self.spynet = copy.copy(spynet)  # the same module but for its level CNNs (its own dict of children)
        self.spynet._modules = dict(spynet._modules)
        self.spynet._modules["basic_module"] = nn.ModuleList(_Level(p) for p in levels)

    def __call__(self, x: torch.Tensor, state: torch.Tensor) -> list[torch.Tensor]:
        from vsrkit.models.basicvsr import _one_way_flows
        from vsrkit.models.layers.common import flow_warp

        with torch.inference_mode():
            flow = _one_way_flows(self.spynet, x.float(), backward=self.backward)[:, 0]
            return [flow_warp(state.float(), flow.permute(0, 2, 3, 1))]

    def prepare(self, height: int, width: int) -> None:
        """Compile the level CNNs for frames of ``height x width`` now: one alignment of zeros, through SpyNet's
        own pyramid (so its level sizes are never worked out twice)."""
        o = self.owner
        self(torch.zeros(1, 2, o.spec.channels, height, width), torch.zeros(1, o.state_channels, height, width))


class _BackwardBody(nn.Module):
    """The backward branch's trunk for one frame: (the frame, the aligned state) -> its backward features."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
        return self.model.backward_trunk(torch.cat([lr, aligned], dim=1))


class _ForwardBody(nn.Module):
    """The forward branch's trunk, the fusion with the backward features and the upsampling for one frame:
    (the frame, the aligned state, its backward features) -> (its output, its forward state)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor, aligned: torch.Tensor, backward_feat: torch.Tensor):
        from vsrkit.models.basicvsr import _reconstruct

        m = self.model
        feat = m.forward_trunk(torch.cat([lr, aligned], dim=1))
        fused = m.lrelu(m.fusion(torch.cat([backward_feat, feat], dim=1)))
        return _reconstruct(m, fused, lr), feat


class _IconBackwardBody(nn.Module):
    """IconVSR's backward branch for one frame: at a keyframe the refill (the aligned state fused with the
    keyframe's EDVR features), then the trunk."""

    def __init__(self, model: nn.Module, key: bool):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, lr: torch.Tensor, aligned: torch.Tensor, *key_feat: torch.Tensor) -> torch.Tensor:
        m = self.model
        feat = m.backward_fusion(torch.cat([aligned, key_feat[0]], dim=1)) if self.key else aligned
        return m.backward_trunk(torch.cat([lr, feat], dim=1))


class _IconForwardBody(nn.Module):
    """IconVSR's forward branch for one frame: the refill at a keyframe, the trunk coupled with the backward
    features, and the upsampling -> (its output, its forward state)."""

    def __init__(self, model: nn.Module, key: bool):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, lr: torch.Tensor, aligned: torch.Tensor, backward_feat: torch.Tensor, *key_feat: torch.Tensor):
        from vsrkit.models.basicvsr import _reconstruct

        m = self.model
        feat = m.forward_fusion(torch.cat([aligned, key_feat[0]], dim=1)) if self.key else aligned
        feat = m.forward_trunk(torch.cat([lr, backward_feat, feat], dim=1))
        return _reconstruct(m, feat, lr), feat


def _stepwise_passes(spec: ModelSpec) -> str | None:
    """``basicvsr`` or ``iconvsr`` when the model's two passes are theirs (exact when run one frame at a time
    with zero states at the video's ends), else None."""
    from vsrkit.models import basicvsr

    p = spec.passes
    if p is None:
        return None
    if p.backward is basicvsr.backward_pass and p.forward is basicvsr.forward_pass:
        return "basicvsr"
    if p.backward is basicvsr.iconvsr_backward and p.forward is basicvsr.iconvsr_forward:
        return "iconvsr"
    return None


def _keyframes(model: "OpenVinoModel", x: torch.Tensor, block: Block) -> dict[int, torch.Tensor]:
    """IconVSR: the EDVR features of the keyframes in the block (``models.basicvsr._block_keyframes`` on
    OpenVINO)."""
    from vsrkit.models.basicvsr import _keyframe_window

    m = model.torch_model
    last = block.total - 1
    edvr = model.graph(x, "edvr")
    feats = {}
    for i in range(block.start, block.stop):
        if i % m.keyframe_stride == 0 or i == last:
            local = [j - block.first for j in _keyframe_window(i, block.total, m.temporal_padding)]
            feats[i] = edvr(x[:, local])[0]
    return feats


def _ov_icon_backward(model: "OpenVinoModel", x: torch.Tensor, state: torch.Tensor | None, block: Block):
    """IconVSR's ``TwoPass.backward`` on OpenVINO; returns ((features, keyframe features), state) as
    ``iconvsr_backward`` does."""
    if block.total == 1:
        return model.torch_passes.backward(model.torch_model, x, state, block)
    key_feats = _keyframes(model, x, block)
    align = model.graph(x, "align-backward")
    o, n = block.offset, block.size
    b, _, _, h, w = x.shape
    feat = state if state is not None else x.new_zeros(b, model.state_channels, h, w)
    feats: list[torch.Tensor] = [x.new_empty(0)] * n
    for i in range(n - 1, -1, -1):
        j, t = o + i, block.start + i
        nxt = j + 1 if t + 1 < block.total else j
        (aligned,) = align(x[:, [j, nxt]], feat)
        if t in key_feats:
            (feat,) = model.graph(x, "body-backward-key")(x[:, j], aligned, key_feats[t])
        else:
            (feat,) = model.graph(x, "body-backward")(x[:, j], aligned)
        feats[i] = feat
    return (torch.stack(feats, 1), key_feats), feat


def _ov_icon_forward(model: "OpenVinoModel", x: torch.Tensor, feats: Any, state: torch.Tensor | None, block: Block):
    """IconVSR's ``TwoPass.forward`` on OpenVINO."""
    if block.total == 1:
        return model.torch_passes.forward(model.torch_model, x, feats, state, block)
    backward_feats, key_feats = feats
    align = model.graph(x, "align-forward")
    o, n = block.offset, block.size
    b, _, _, h, w = x.shape
    feat = state if state is not None else x.new_zeros(b, model.state_channels, h, w)
    outs = []
    for i in range(n):
        j, t = o + i, block.start + i
        prev = j - 1 if t > 0 else j
        (aligned,) = align(x[:, [prev, j]], feat)
        if t in key_feats:
            y, feat = model.graph(x, "body-forward-key")(x[:, j], aligned, backward_feats[:, i], key_feats[t])
        else:
            y, feat = model.graph(x, "body-forward")(x[:, j], aligned, backward_feats[:, i])
        outs.append(y)
    return torch.stack(outs, 1), feat


def _ov_backward(model: "OpenVinoModel", x: torch.Tensor, state: torch.Tensor | None, block: Block):
    """``TwoPass.backward`` on OpenVINO, from the block's last frame to its first: per frame, the alignment
    of the next frame's state (``graph``: f32 sampling), then the trunk (at the model's precision)."""
    if block.total == 1:  # a one-frame video (and twopass's size probe): the network's own pass
        return model.torch_passes.backward(model.torch_model, x, state, block)
    align, body = model.graph(x, "align-backward"), model.graph(x, "body-backward")
    o, n = block.offset, block.size
    b, _, _, h, w = x.shape
    feat = state if state is not None else x.new_zeros(b, model.state_channels, h, w)
    feats: list[torch.Tensor] = [x.new_empty(0)] * n
    for i in range(n - 1, -1, -1):
        j = o + i
        nxt = j + 1 if block.start + i + 1 < block.total else j  # no next frame: a zero state, warped by anything
        (aligned,) = align(x[:, [j, nxt]], feat)
        (feat,) = body(x[:, j], aligned)
        feats[i] = feat
    return torch.stack(feats, 1), feat


def _ov_forward(model: "OpenVinoModel", x: torch.Tensor, feats: torch.Tensor, state: torch.Tensor | None, block: Block):
    """``TwoPass.forward`` on OpenVINO, from the block's first frame to its last."""
    if block.total == 1:
        return model.torch_passes.forward(model.torch_model, x, feats, state, block)
    align, body = model.graph(x, "align-forward"), model.graph(x, "body-forward")
    o, n = block.offset, block.size
    b, _, _, h, w = x.shape
    feat = state if state is not None else x.new_zeros(b, model.state_channels, h, w)
    outs = []
    for i in range(n):
        j = o + i
        prev = j - 1 if block.start + i > 0 else j  # no previous frame: a zero state, warped by anything
        (aligned,) = align(x[:, [prev, j]], feat)
        y, feat = body(x[:, j], aligned, feats[:, i])
        outs.append(y)
    return torch.stack(outs, 1), feat


def _sample_side(spec: ModelSpec, size: int) -> int:
    m = spec.size_multiple
    return -(-max(size, spec.min_size) // m) * m


def _model_name(model: nn.Module) -> str:
    spec_name = getattr(getattr(model, "spec", None), "name", "")
    return spec_name or getattr(model, "model_name", "") or type(model).__name__


# ------------------------------------------------------------------------------------------------ the model
class OpenVinoModel(nn.Module):
    """A vsrkit network run by OpenVINO on the CPU, shaped like a vsrkit network (``spec``, ``forward``,
    ``step`` or the two passes), so the engine runs it as it runs the PyTorch one. Inputs may be in any
    precision; outputs are float32 CPU tensors.

    ``precision``: fp32, bf16 or int8 (int8 needs ``calibration``: frames ``(T, c, h, w)`` in [0, 1], consecutive
    frames of a real video, see ``calibration_frames``; ``seed`` picks the window they are cropped to).
    ``cache``: the folder of converted models (default ``cache_root()``; None: no cache).
    ``size``/``frames``/``clip_overlap``: the fixed tile side and clip of models run as fixed clips.
    ``via_onnx``: convert through an ONNX file instead of straight from PyTorch, and ``stepwise=False``: run
    BasicVSR as fixed clips too (both for comparison, ``benchmarks/bench_openvino.py``).
    """

    def __init__(self, model: nn.Module, precision: str = "fp32", *, calibration: torch.Tensor | None = None,
                 seed: int = 0, cache: str | os.PathLike | None | bool = True, size: int | None = None,
                 frames: int | None = None, clip_overlap: int | None = None, via_onnx: bool = False,
                 stepwise: bool = True, say: Callable[[str], None] | None = None):
        super().__init__()
        require_openvino()
        if precision not in PRECISIONS:
            raise VsrkitError(f"unknown OpenVINO precision {precision!r} (use {', '.join(PRECISIONS)})")
        if precision == "int8":
            _require_nncf()
            if calibration is None:
                raise VsrkitError("--precision int8 needs calibration frames (--calibrate FILE)")
        spec: ModelSpec = model.spec
        self.torch_model = model.eval().to("cpu")
        self.precision = precision
        self.seed = seed
        self.via_onnx = via_onnx
        self.say = say or log.info
        self.stats = Stats()
        self.cache = cache_root() if cache is True else (None if cache in (None, False) else Path(cache))
        self.digest = weights_digest(model)
        # a buffer, so that the pipeline's resume manifest (a digest of the state dict) tells models apart
        self.register_buffer("weights_id", torch.tensor(list(bytes.fromhex(self.digest)), dtype=torch.uint8))
        self.calibration = None if calibration is None else calibration.detach().cpu().float()
        self.calibration_digest = None if calibration is None else _tensor_digest(self.calibration)
        name = _model_name(model)
        self.model_name = f"{name} (openvino {precision})"
        self.parts: dict[str, Part] = {}
        self.aligns: dict[str, SplitAlign] = {}  # stepwise bidirectional models in bf16/int8: per direction and size
        self.stepwise: str | None = None  # bidirectional models run as one-frame steps: "basicvsr" / "iconvsr"
        self._recorded: dict[tuple[str, Any], list[list[np.ndarray]]] = {}  # calibration inputs not yet used
        self.size: int | None = None
        kind = spec.temporal.kind
        self.kind = kind
        c = spec.channels
        g = torch.Generator().manual_seed(0)
        side = _sample_side(spec, 32)
        if kind == "frame":
            self.parts["forward"] = Part(self, "forward", model, [torch.rand(1, c, side, side, generator=g)], (0, -2, -1))
        elif kind == "window":
            x = torch.rand(1, spec.temporal.window, c, side, side, generator=g)
            self.parts["forward"] = Part(self, "forward", model, [x], (0, -2, -1))
            spec = dataclasses.replace(spec, sliding=None)
        elif kind == "recurrent":
            x = torch.rand(1, spec.temporal.window, c, side, side, generator=g)
            with torch.no_grad():
                _, state = model.step(x, None)
            if any(s.shape[-2:] != x.shape[-2:] for s in state):
                raise VsrkitError("OpenVINO: the recurrent state must have the input frames' height and width")
            state = [s + 0.1 * torch.rand(s.shape, generator=g) for s in state]  # not the zero first state
            self.state_channels_list = [s.shape[1] for s in state]
            self.parts["step"] = Part(self, "step", _Step(model), [x, *state], (0, -2, -1))
        elif kind == "bidirectional" and stepwise and _stepwise_passes(spec):
            self.stepwise = _stepwise_passes(spec)
            self.torch_passes = spec.passes
            self.state_channels = int(getattr(model, "num_feat", 0)) or self._probe_state_channels()
            fns = (_ov_backward, _ov_forward) if self.stepwise == "basicvsr" else (_ov_icon_backward, _ov_icon_forward)
            spec = dataclasses.replace(spec, passes=TwoPass(*fns, spec.passes.context, spec.passes.forward_cost))
            # the graphs are static: made per frame size, at the first call (``graphs``)
        else:  # sequence models, and bidirectional ones without stepwise passes: fixed clips
            T = frames or spec.protocol.clip or DEFAULT_FRAMES
            if T < spec.min_frames:
                raise VsrkitError(f"--frames {T}: this model needs at least {spec.min_frames} frames")
            side = _sample_side(spec, size or DEFAULT_SIZE)
            if side % spec.size_multiple:
                raise VsrkitError(f"--tile {side} must be a multiple of {spec.size_multiple} for this model")
            overlap = clip_overlap
            if overlap is None:
                overlap = spec.protocol.clip_overlap if spec.protocol.clip_overlap is not None else T // 4
            spec = dataclasses.replace(
                spec, temporal=Temporal("sequence"), passes=None, min_frames=T, min_size=side,
                protocol=dataclasses.replace(spec.protocol, clip=T, clip_overlap=min(overlap, (T - 1) // 2)),
            )
            self.size = side
            self.parts["forward"] = Part(self, "clip", model, [torch.rand(1, T, c, side, side, generator=g)])
            if kind == "bidirectional":
                self.say(f"{name}: OpenVINO runs it as clips of {T} frames in tiles of {side} pixels "
                         f"(its two passes are not stepwise)")
        self.spec = spec

    # -- building
    def _probe_state_channels(self) -> int:
        x = torch.zeros(1, 1, self.spec.channels if hasattr(self, "spec") else 3, 64, 64)
        with torch.no_grad():
            _, st = self.torch_passes.backward(self.torch_model, x, None, Block(0, 1, 1))
        return int(st.shape[1])

    def graph(self, x: torch.Tensor, what: str) -> "Part | SplitAlign":
        """One graph of a stepwise bidirectional model for frames of x's size, made at its first call: the
        alignment of a direction (``align-backward``, ``align-forward``; one f32 graph in fp32, else a
        ``SplitAlign``: SpyNet's level CNNs in bf16, the sampling in f32), its body (``body-backward``,
        ``body-forward``, and IconVSR's keyframe bodies ``...-key``), or IconVSR's ``edvr``."""
        h, w = x.shape[-2:]
        name = f"{what}-{h}x{w}"
        if name in self.parts:
            return self.parts[name]
        if name in self.aligns:
            return self.aligns[name]
        b, c, nf = x.shape[0], x.shape[2], self.state_channels
        g = torch.Generator().manual_seed(0)
        lr, st, bf = (torch.rand(b, c, h, w, generator=g), torch.rand(b, nf, h, w, generator=g),
                      torch.rand(b, nf, h, w, generator=g))
        m, icon, key = self.torch_model, self.stepwise == "iconvsr", what.endswith("-key")
        kf = [torch.rand(b, nf, h, w, generator=g)] if key else []
        precision = None
        if what.startswith("align-") and self.precision != "fp32":
            from vsrkit.infer.runtime import native_bf16_unit

            # SpyNet's level CNNs in bf16 (int8 models: where the CPU has native bf16, else f32)
            level_precision = "bf16" if self.precision == "bf16" or native_bf16_unit() else "fp32"
            levels = []
            for i, level in enumerate(m.spynet.basic_module):  # one graph per level, dynamic in size: shared
                pname = f"spynet-level{i}"
                if pname not in self.parts:
                    self.parts[pname] = Part(self, pname, level, [torch.rand(1, 8, 32, 32, generator=g)], (0, -2, -1),
                                             precision=level_precision)
                levels.append(self.parts[pname])
            self.aligns[name] = SplitAlign(self, what == "align-backward", levels)
            return self.aligns[name]
        if what.startswith("align-"):
            module, example, precision = _Align(m, what == "align-backward"), [torch.rand(b, 2, c, h, w, generator=g), st], "fp32"
        elif what.startswith("body-backward"):
            module, example = (_IconBackwardBody(m, key) if icon else _BackwardBody(m)), [lr, st, *kf]
        elif what.startswith("body-forward"):
            module, example = (_IconForwardBody(m, key) if icon else _ForwardBody(m)), [lr, st, bf, *kf]
        elif what == "edvr":
            n = 2 * m.temporal_padding + 1
            module, example = m.edvr, [torch.rand(b, n, c, h, w, generator=g)]
        else:
            raise ValueError(f"unknown graph {what!r}")
        self.parts[name] = Part(self, name, module, example, precision=precision)
        return self.parts[name]

    def prepare(self, height: int, width: int) -> None:
        """Convert (or read from the cache), quantise and compile now for frames of ``height x width`` (after
        the engine's padding), rather than at the first frame."""
        spec = self.spec
        c = spec.channels
        if self.kind == "bidirectional" and self.size is None:
            x = torch.zeros(1, 2, c, height, width)
            whats = ["align-backward", "body-backward", "align-forward", "body-forward"]
            if self.stepwise == "iconvsr":
                whats += ["body-backward-key", "body-forward-key", "edvr"]
            for what in whats:
                part = self.graph(x, what)
                if isinstance(part, SplitAlign):
                    part.prepare(height, width)
                else:
                    part._request(tuple(tuple(d) for d in part.dims), part.precision or self.precision)
            return
        for part in self.parts.values():
            shapes = [list(d) for d in part.dims]
            for d in shapes:
                if d[0] < 0:
                    d[0] = 1
                if d[-1] < 0:
                    d[-2], d[-1] = height, width
            part._request(tuple(tuple(d) for d in shapes), self.precision)

    # -- calibration (int8)
    def calibration_inputs(self, part: Part, shapes: tuple[tuple[int, ...], ...] | None) -> list[list[np.ndarray]]:
        """The inputs ``part`` gets while this model runs, in fp32, over the calibration frames (resized to the
        frame size of ``shapes`` for a static graph)."""
        at = (part.name, shapes)
        if at in self._recorded:
            return self._recorded.pop(at)
        frames = self.calibration
        if shapes is not None:
            h, w = shapes[0][-2:]
            frames = _fit(frames, h, w, self.seed)
        else:
            frames = _fit(frames, min(frames.shape[-2], CALIBRATION_SIDE), min(frames.shape[-1], CALIBRATION_SIDE),
                          self.seed, crop_only=True)
        frames = frames.to(torch.float32)
        if frames.shape[1] != self.spec.channels:
            raise VsrkitError(f"calibration frames have {frames.shape[1]} channels, the model takes {self.spec.channels}")
        for p in self.parts.values():
            p.record = [] if p.precision is None else None  # (graphs at a fixed precision are not quantised)
        try:
            with torch.inference_mode():
                self._drive(frames[None])
        finally:
            for p in self.parts.values():  # (kept for this model's other graphs, which quantise next)
                if p.record:
                    self._recorded[(p.name, tuple(tuple(a.shape) for a in p.record[0]) if p.static else None)] = p.record
                p.record = None
        return self._recorded.pop(at, [])

    def _drive(self, clip: torch.Tensor) -> None:
        """Run the model over ``clip[1, T, c, h, w]`` in its calling convention (calibration)."""
        T = clip.shape[1]
        spec = self.spec
        kind = spec.temporal.kind
        if kind == "frame":
            for t in range(T):
                self.forward(clip[:, t])
        elif kind == "window":
            n = spec.temporal.window
            for j in range(max(T - n + 1, 1)):
                self.forward(clip[:, j:j + n])
        elif kind == "recurrent":
            n, state = spec.temporal.window, None
            for j in range(max(T - n + 1, 1)):
                _, state = self.step(clip[:, j:j + n], state)
        elif kind == "bidirectional":
            blk = Block(0, T, T)
            feats, _ = spec.passes.backward(self, clip, None, blk)
            spec.passes.forward(self, clip, feats, None, blk)
        else:
            n = spec.protocol.clip or T
            for a in range(0, max(T - n, 0) + 1, n):
                self.forward(clip[:, a:a + n])

    # -- the network's calling conventions
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "recurrent":
            raise TypeError("a recurrent model runs one step at a time: use step(x, state)")
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"this OpenVINO model takes {self.size}x{self.size} inputs, got {tuple(x.shape[-2:])}")
        return self.parts["forward"](x)[0]

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None):
        if state is None:
            b, _, _, h, w = x.shape
            state = tuple(x.new_zeros(b, ch, h, w) for ch in self.state_channels_list)
        y, *new_state = self.parts["step"](x, *state)
        return y, tuple(new_state)

    def extra_repr(self) -> str:
        return f"{self.model_name}, {self.spec.temporal.describe()}, x{self.spec.scale}" + (
            f", {self.size}x{self.size}" if self.size else "")


def _fit(frames: torch.Tensor, h: int, w: int, seed: int, crop_only: bool = False) -> torch.Tensor:
    """Frames ``(T, c, H, W)`` made ``h x w``: a window chosen by ``seed`` where they are large enough, else
    resized (bicubic) to cover it first."""
    H, W = frames.shape[-2:]
    if not crop_only and (H < h or W < w):
        f = max(h / H, w / W)
        frames = torch.nn.functional.interpolate(frames, size=(max(h, round(H * f)), max(w, round(W * f))),
                                                 mode="bicubic", align_corners=False).clamp(0, 1)
        H, W = frames.shape[-2:]
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, H - h + 1))
    left = int(rng.integers(0, W - w + 1))
    return frames[..., top:top + h, left:left + w]


# ------------------------------------------------------------------------------------------------ frames
def calibration_frames(source: str | os.PathLike, channels: int = 3, frames: int = CALIBRATION_FRAMES,
                       seed: int = 0, max_side: int | None = None) -> torch.Tensor:
    """``frames`` consecutive frames ``(T, c, h, w)`` in [0, 1] of a video, frame folder or image, from a start
    chosen by ``seed`` (the same frames for the same seed); ``max_side`` crops them to a window."""
    from vsrkit.infer.colour import image_to_item
    from vsrkit.io import VideoReader

    src = Path(source)
    if not src.exists():
        raise VsrkitError(f"--calibrate {src}: no such file or folder")
    rng = np.random.default_rng(seed)
    with VideoReader(src) as reader:
        total = reader.info.num_frames
        first = int(rng.integers(0, max(1, total - frames + 1))) if total else 0
        out = []
        for i, frame in enumerate(reader):
            if i >= first:
                out.append(image_to_item(frame.image, channels, None).x.float())
            if len(out) == frames:
                break
    if not out:
        raise VsrkitError(f"--calibrate {src}: no frames")
    x = torch.stack(out)
    if max_side is not None:
        x = _fit(x, min(x.shape[-2], max_side), min(x.shape[-1], max_side), seed, crop_only=True)
    return x


# ------------------------------------------------------------------------------------------------ precision
def bf16_speedup() -> float:
    """How much faster OpenVINO runs a 64->64 3x3 convolution (1 x 64 x 64 x 128) in bf16 than in f32 here;
    interleaved runs, the median of each, measured once per thread count (``VSRKIT_OV_BF16_SPEEDUP``
    overrides)."""
    forced = os.environ.get("VSRKIT_OV_BF16_SPEEDUP")
    if forced:
        return float(forced)
    return _bf16_speedup_at(torch.get_num_threads())


@functools.cache
def _bf16_speedup_at(threads: int) -> float:
    ov = require_openvino()
    import openvino.opset13 as ops

    x = ops.parameter([1, 64, 64, 128], np.float32)
    w = ops.constant(np.random.default_rng(0).standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05)
    model = ov.Model([ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])], [x])
    core = _core(None)
    reqs = {p: core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": _HINT[p], "INFERENCE_NUM_THREADS": str(threads)})
            .create_infer_request() for p in ("fp32", "bf16")}
    a = np.random.default_rng(1).random((1, 64, 64, 128), dtype=np.float32)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in reqs.values():
        r.infer([a])
    for _ in range(7):
        for p, r in reqs.items():
            t0 = time.perf_counter()
            r.infer([a])
            times[p].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return med["fp32"] / max(med["bf16"], 1e-9)


def choose_precision(requested: str, spec: ModelSpec, name: str = "this model", force: bool = False,
                     say: Callable[[str], None] | None = None) -> str:
    """The OpenVINO precision for ``requested`` (auto, fp32, bf16, fp16, int8).

    ``auto``: bf16 where this CPU has native bf16 units, OpenVINO runs bf16 at least ``BF16_MIN_SPEEDUP`` times
    faster than f32, and the model's measured bf16 loss on OpenVINO is within budget; else fp32 (said through
    ``say``, with why). bf16 and int8 asked for: refused with a one-line error when their measured loss is over
    ``LOSS_BUDGET_DB`` unless ``force``. fp16 runs as bf16 (as on the PyTorch CPU path)."""
    from vsrkit.infer.runtime import native_bf16_unit

    tell = say or log.info
    requested = (requested or "fp32").lower()
    if requested == "fp16":
        tell("fp16 is not supported on CPU: using bf16 instead")
        requested = "bf16"
    if requested == "auto":
        loss = spec.ov_bf16_loss_db
        unit = native_bf16_unit()
        choice = "fp32"
        if unit is None:
            why = "this CPU has no native bf16 units"
        elif loss is None:
            why = "this model's bf16 quality on OpenVINO has not been measured"
        elif loss > LOSS_BUDGET_DB["bf16"]:
            why = f"bf16 costs this model {loss:.2f} dB on OpenVINO, over the {LOSS_BUDGET_DB['bf16']} dB budget"
        else:
            gain = bf16_speedup()
            if gain >= BF16_MIN_SPEEDUP:
                choice, why = "bf16", f"native here ({unit}), {gain:.1f}x the f32 speed; measured loss {loss:.3f} dB"
            else:
                why = f"bf16 is native here ({unit}) but runs at {gain:.2f}x the f32 speed"
        tell(f"precision auto: {choice} on OpenVINO ({why})")
        return choice
    if requested not in PRECISIONS:
        raise VsrkitError(f"unknown precision {requested!r} (use auto, fp32, bf16 or int8 with --backend openvino)")
    if requested != "fp32":
        loss = spec.ov_bf16_loss_db if requested == "bf16" else spec.int8_loss_db
        budget = LOSS_BUDGET_DB[requested]
        if loss is not None and loss > budget and not force:
            raise VsrkitError(f"{name}: {requested} costs {loss:.2f} dB (Y PSNR on held-out clips, over the {budget} dB "
                              f"budget); use --force-precision to run it anyway")
        if loss is None:
            tell(f"{requested} on OpenVINO: its quality loss has not been measured for {name}")
    return requested


# ------------------------------------------------------------------------------------------------ pipeline glue
def openvino_model(model: Any, weights: Any, cfg: Any, precision: str, *, calibrate: Any = None, seed: int = 0,
                   force: bool = False, tile: int | None = None, max_memory: float | None = None,
                   say: Callable[[str], None] | None = None, progress: bool = True) -> tuple["OpenVinoModel", Any]:
    """``--backend openvino``: the network (a name, a checkpoint, or a module) as an ``OpenVinoModel`` at the
    chosen precision, and the engine config it runs under (fp32 tensors in, no autocast, contiguous frames;
    fixed-clip models set the tiles)."""
    require_openvino()
    from vsrkit.hub.loader import load_model

    if cfg.device.type != "cpu":
        raise VsrkitError(f"--backend openvino runs on the CPU, not --device {cfg.device.type}")
    if (precision or "").lower() == "int8" and calibrate is None:
        raise VsrkitError("--precision int8 needs calibration frames: give --calibrate FILE")
    if weights is not None and str(weights).endswith(".onnx"):
        raise VsrkitError("--backend openvino converts the model itself: give the model name or its checkpoint, "
                          "not an ONNX file")
    if model is None and weights is None:
        from vsrkit.hub.registry import default_model

        model = default_model("cpu")
    net = model if isinstance(model, nn.Module) else load_model(model, weights=weights, progress=progress)
    name = _model_name(net)
    spec = net.spec
    chosen = choose_precision(precision, spec, name, force, say)
    frames = None
    if chosen == "int8":
        if calibrate is None:
            raise VsrkitError("--precision int8 needs calibration frames: give --calibrate FILE")
        frames = calibration_frames(calibrate, spec.channels, seed=seed)
    ovm = OpenVinoModel(net, chosen, calibration=frames, seed=seed, say=say,
                        size=tile if spec.temporal.kind in ("sequence", "bidirectional") else None)
    if ovm.size:
        if max_memory is not None:
            raise VsrkitError(f"{name} runs on OpenVINO in tiles of {ovm.size} pixels: --max-memory does not apply")
        if tile and tile > ovm.size:
            raise VsrkitError(f"--tile {tile}: this OpenVINO model takes tiles of at most {ovm.size} pixels")
        side = ovm.size
        cfg = dataclasses.replace(cfg, tile=side, tile_overlap=min(cfg.tile_overlap, (side - 1) // 2))
    cfg = dataclasses.replace(cfg, autocast_dtype=None, auto_precision=False, channels_last=False, compile=False)
    return ovm, cfg
