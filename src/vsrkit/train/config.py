"""Training configurations: YAML read with ``yaml.safe_load`` and validated into dataclasses.

A config file has the sections below (every key is a field of the dataclass of its section). A key the
dataclasses do not know, a key without a default that is absent, or a value of the wrong type is a one-line
``VsrkitError`` naming the key (``config: unknown key 'train.bacth_size'``). ``--set key=value`` overrides a
key by its dotted name before validation; the value is read as YAML (``--set optim.lr=1e-4``). Keys that a
config leaves out are then taken from the training defaults of its network's family (``Family.training``, e.g.
BasicVSR's ``optim.lr_mul: {spynet: 0.125}`` and ``freeze.keys: [spynet, edvr]``); the config's own keys win.

::

    name: basicvsr_reds            # run name
    output: runs/basicvsr_reds     # checkpoints, log.jsonl, TensorBoard events
    seed: 0
    model: {arch: BasicVSR, kwargs: {num_feat: 64, num_block: 30}, init: null}
    data: {kind: reds, root: datasets/REDS, num_frame: 15, gt_size: 256, hflip: true, rot: true}
    val: {every: 5000, data: {kind: reds, root: datasets/REDS, split: val}}
    train: {total_iter: 300000, batch_size: 4, ema_decay: 0.999}
    optim: {lr: 2.0e-4, betas: [0.9, 0.99], lr_mul: {spynet: 0.125}}
    scheduler: {type: cosine_restart, periods: [300000], restart_weights: [1], eta_min: 1.0e-7}
    freeze: {keys: [spynet, edvr], until: 5000}
    loss: {type: charbonnier, eps: 1.0e-12, reduction: mean}

Two optional sections train a GAN (RealBasicVSR's second stage; absent: no perceptual loss, no discriminator)::

    perceptual: {layer_weights: {"2": 0.1, "7": 0.1, "16": 1.0, "25": 1.0, "34": 1.0}, weight: 1.0}
    gan: {discriminator: {mid_channels: 64}, weight: 5.0e-2, lr: 1.0e-4, betas: [0.9, 0.99]}
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from vsrkit.data.config import DataCfg
from vsrkit.data.realworld import PRESETS
from vsrkit.errors import VsrkitError
from vsrkit.models.registry import family_of_arch, get_family

DATA_KINDS = ("reds", "vimeo", "clips", "videos", "images")
SPLITS = ("train", "val", "test")
LOSSES = ("charbonnier", "l1", "mse")
REDUCTIONS = ("mean", "sum", "sample")
OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("cosine_restart", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
GAN_TYPES = ("vanilla",)
DISCRIMINATORS = ("UNetDiscriminatorWithSpectralNorm",)
VGG_WEIGHTS = ("imagenet", "random")


@dataclass
class ModelCfg:
    """The network: a vsrkit architecture class and its official constructor arguments."""

    arch: str  # class name: BasicVSR, IconVSR, EDVR, RLSP, VRT, ESPCN, FSRCNN, EdgeSRTR, ...
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # weights file to start from, e.g. the EDVR without TSA that TSA training starts from
    init_strict: bool = True  # False: load only the keys whose name and shape fit (BasicSR strict_load_g false)
    init_widen: bool = False  # True: init is a narrower network of the same layout, embedded as the same function


@dataclass
class ValCfg:
    """Validation PSNR/SSIM on held-out clips, through the inference engine."""

    every: int = 0  # iterations between validations; 0: none
    data: DataCfg | None = None
    y_channel: bool = False  # PSNR/SSIM on MATLAB's Y (BasicSR test_y_channel)
    crop_border: int = 0
    end_padding: str | None = None  # window models: frames beyond the ends (None: the model's protocol)
    use_ema: bool = False  # validate the EMA weights
    ssim: bool = True
    samples: int = 1  # clips whose first output frame goes to TensorBoard


@dataclass
class TrainCfg:
    """The loop: length, batch, precision, logging and checkpoints."""

    total_iter: int
    batch_size: int  # per process (BasicSR batch_size_per_gpu); the effective batch is this x world size
    num_workers: int = 2  # DataLoader workers per process (decoding and augmentation run there)
    ema_decay: float = 0.0  # 0: no EMA
    grad_clip: float = 0.0  # max gradient norm; 0: none
    precision: str = "fp32"  # fp32 | bf16 (CPU or GPU) | fp16 (GPU, with GradScaler)
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = False  # NHWC convolutions (much faster with bf16 on CPUs with AMX)
    deterministic: bool = False  # torch.use_deterministic_algorithms: bitwise resumes on CPU
    log_every: int = 100
    save_every: int = 5000
    keep: int = 0  # training checkpoints kept (0: all)
    progress: bool = True  # tqdm bar with it/s and ETA (rank 0)


@dataclass
class OptimCfg:
    """Adam or SGD, with per-module learning-rate multipliers."""

    lr: float
    type: str = "adam"  # adam | sgd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam
    eps: float = 1e-8  # Adam
    momentum: float = 0.0  # SGD
    weight_decay: float = 0.0
    # parameters whose name contains a key get lr x value, in a group of their own (BasicSR flow_lr_mul,
    # KAIR fix_lr_mul); the other parameters form the first group
    lr_mul: dict[str, float] = field(default_factory=dict)


@dataclass
class SchedulerCfg:
    """Cosine annealing with restarts (BasicSR CosineAnnealingRestartLR), or a constant rate."""

    type: str = "constant"
    periods: list[int] = field(default_factory=list)
    restart_weights: list[float] = field(default_factory=list)
    eta_min: float = 0.0  # not scaled by lr_mul (as BasicSR)


@dataclass
class FreezeCfg:
    """Modules frozen in iterations 1 .. until-1 and trained from iteration ``until`` on (BasicSR fix_flow, EDVR tsa_iter)."""

    keys: list[str] = field(default_factory=list)  # parameter-name substrings
    until: int = 0  # 0 or 1: nothing frozen
    train_only: bool = False  # True: the matching parameters are the only ones trained (EDVR tsa_iter: [fusion])


@dataclass
class LossCfg:
    """The pixel loss."""

    type: str = "charbonnier"  # charbonnier | l1 | mse
    eps: float = 1e-12  # Charbonnier: sqrt(d^2 + eps) (BasicSR adds eps as it is; KAIR's eps is squared first)
    reduction: str = "mean"  # mean (every element) | sum | sample (sum over each sample, mean over the batch)
    weight: float = 1.0
    value_range: float = 1.0  # the pixel scale the loss sees (RLSP's official code: 255)
    # RealBasicVSR's cleaning loss: L1 (mean) between the cleaned LR clip and the pixel target shrunk x1/scale with
    # area interpolation, times this weight; 0: none (networks that return their cleaned input: return_lqs)
    cleaning_weight: float = 0.0
    # the pixel (and cleaning) target is the unsharp-masked ground truth (mmagic is_use_sharpened_gt_in_pixel)
    sharpened_gt: bool = False


@dataclass
class PerceptualCfg:
    """A perceptual loss on VGG-19 features (mmagic's PerceptualLoss without its style term)."""

    layer_weights: dict[str, float]  # layer index in VGG-19's ``features`` (torchvision's numbering) -> weight
    weight: float = 1.0  # perceptual_weight
    criterion: str = "l1"  # l1 | mse, between the features (mean over elements)
    use_input_norm: bool = True  # ImageNet mean/std normalisation of the [0, 1] input
    # imagenet: torchvision's published ImageNet weights through the hub (sha256-checked); random: untrained (tests);
    # or a local file holding ``features.N.*`` keys
    vgg_weights: str = "imagenet"
    sharpened_gt: bool = False  # compare with the unsharp-masked ground truth (is_use_sharpened_gt_in_percep)


@dataclass
class GanCfg:
    """An adversarial loss against a discriminator trained alongside, with an Adam optimizer of its own."""

    lr: float
    arch: str = "UNetDiscriminatorWithSpectralNorm"
    discriminator: dict[str, Any] = field(default_factory=dict)  # its constructor arguments
    type: str = "vanilla"  # vanilla: binary cross-entropy on logits
    weight: float = 1.0  # of the generator's adversarial term (the discriminator's loss is not weighted)
    real_label: float = 1.0
    fake_label: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    sharpened_gt: bool = False  # the "real" images are the unsharp-masked ground truth (is_use_sharpened_gt_in_gan)


@dataclass
class Config:
    """A whole training run."""

    name: str
    output: str
    model: ModelCfg
    train: TrainCfg
    optim: OptimCfg
    seed: int = 0
    data: DataCfg | None = None
    val: ValCfg = field(default_factory=ValCfg)
    scheduler: SchedulerCfg = field(default_factory=SchedulerCfg)
    freeze: FreezeCfg = field(default_factory=FreezeCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    perceptual: PerceptualCfg | None = None
    gan: GanCfg | None = None


# -------------------------------------------------------------------------------------------- validation

def _type_name(tp: Any) -> str:
    if tp is Any:
        return "any value"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the type ``tp``; nested dataclasses built; a one-line error naming ``key``."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except VsrkitError:
                if len([x for x in args if x is not type(None)]) == 1:
                    raise
        raise VsrkitError(f"config: {key} must be {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise VsrkitError(f"config: {key} must be a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise VsrkitError(f"config: {key} must be {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise VsrkitError(f"config: {key} must be a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_convert(k, kt, f"{key} key"): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise VsrkitError(f"config: {key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():  # 5e3 in YAML is a float
                return int(value)
            raise VsrkitError(f"config: {key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VsrkitError(f"config: {key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise VsrkitError(f"config: {key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp}")  # pragma: no cover - a bug in the dataclasses


def _build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in names:
            raise VsrkitError(f"config: unknown key {prefix + '.' if prefix else ''}{k!s}"
                              f" (known: {', '.join(names)})")
    values = {}
    for name, f in names.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in raw:
            values[name] = _convert(raw[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise VsrkitError(f"config: missing key {key}")
    return cls(**values)


def _choice(value: str | None, choices: tuple[str, ...], key: str) -> None:
    if value is not None and value not in choices:
        raise VsrkitError(f"config: {key} must be one of {', '.join(choices)}, got {value!r}")


def _check(cfg: Config) -> None:
    """Values the types alone do not rule out."""
    for key, d in (("data", cfg.data), ("val.data", cfg.val.data)):
        if d is None:
            continue
        _choice(d.kind, DATA_KINDS, f"{key}.kind")
        _choice(d.split, SPLITS, f"{key}.split")
        _choice(d.degradation, ("bi", "bd", "realworld"), f"{key}.degradation")
        _choice(d.channels, ("rgb", "y"), f"{key}.channels")
        _choice(d.realworld, tuple(PRESETS), f"{key}.realworld")
        if d.crf is not None and (key == "data" or not 0 <= d.crf <= 51):
            raise VsrkitError(f"config: {key}.crf must be in 0..51 and is for val.data only (training: degradation "
                              f"realworld, realworld: web), got {d.crf}")
        if d.scale < 1:
            raise VsrkitError(f"config: {key}.scale must be at least 1, got {d.scale}")
        if d.gt_size and d.gt_size % d.scale:
            raise VsrkitError(f"config: {key}.gt_size {d.gt_size} must be a multiple of scale {d.scale}")
        if d.num_frame == 0 or d.num_frame < -1:
            raise VsrkitError(f"config: {key}.num_frame must be -1 or at least 1, got {d.num_frame}")
        bad = [f for f in d.downscale if not 0 < f <= 1]
        if bad:
            raise VsrkitError(f"config: {key}.downscale factors must be in (0, 1], got {bad[0]}")
    _choice(cfg.loss.type, LOSSES, "loss.type")
    _choice(cfg.loss.reduction, REDUCTIONS, "loss.reduction")
    _choice(cfg.scheduler.type, SCHEDULERS, "scheduler.type")
    _choice(cfg.train.precision, PRECISIONS, "train.precision")
    _choice(cfg.optim.type, OPTIMIZERS, "optim.type")
    if cfg.val.end_padding is not None:
        _choice(cfg.val.end_padding, ("replicate", "reflection", "reflection_circle"), "val.end_padding")
    if cfg.scheduler.type == "cosine_restart":
        s = cfg.scheduler
        if not s.periods or len(s.periods) != len(s.restart_weights):
            raise VsrkitError("config: scheduler.periods and scheduler.restart_weights must be non-empty lists "
                              "of the same length")
    if cfg.perceptual is not None:
        _choice(cfg.perceptual.criterion, ("l1", "mse"), "perceptual.criterion")
        if not cfg.perceptual.layer_weights:
            raise VsrkitError("config: perceptual.layer_weights must name at least one VGG-19 layer")
        from vsrkit.models.vgg import vgg19_layers

        total = len(vgg19_layers())
        for k in cfg.perceptual.layer_weights:
            if not (k.isdigit() and int(k) < total):
                raise VsrkitError(f"config: perceptual.layer_weights key {k!r} is not a VGG-19 features index "
                                  f"(0..{total - 1})")
    if cfg.gan is not None:
        _choice(cfg.gan.type, GAN_TYPES, "gan.type")
        _choice(cfg.gan.arch, DISCRIMINATORS, "gan.arch")
        if len(cfg.gan.betas) != 2:
            raise VsrkitError(f"config: gan.betas must be two numbers, got {cfg.gan.betas}")
        if cfg.train.precision == "fp16":
            raise VsrkitError("config: train.precision fp16 is not supported with a gan section (use bf16 or fp32)")
    if len(cfg.optim.betas) != 2:
        raise VsrkitError(f"config: optim.betas must be two numbers, got {cfg.optim.betas}")
    for key, v in (("train.total_iter", cfg.train.total_iter), ("train.batch_size", cfg.train.batch_size)):
        if v < 1:
            raise VsrkitError(f"config: {key} must be at least 1, got {v}")
    if cfg.val.every and cfg.val.data is None:
        raise VsrkitError("config: missing key val.data (val.every is set)")


def family_defaults(arch: Any) -> dict[str, Any]:
    """The training defaults of the family of the network class ``arch`` (``Family.training``): config sections
    such as ``{"optim": {"lr_mul": {"spynet": 0.125}}}``; empty for a name that is no network class (the config's
    own check reports it)."""
    if not isinstance(arch, str):
        return {}
    try:
        family = get_family(family_of_arch(arch))
    except VsrkitError:
        return {}
    return copy.deepcopy({section: dict(values) for section, values in family.training.items()})


def merge_under(defaults: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with ``defaults`` filled in where it leaves a key out, section by section: a key that ``raw`` sets
    wins whole (a list or mapping value such as ``optim.lr_mul`` is not merged with the default's)."""
    out = dict(raw)
    for section, values in defaults.items():
        if section not in out:
            out[section] = dict(values)
        elif isinstance(out[section], dict) and isinstance(values, dict):
            out[section] = {**values, **out[section]}
    return out


def from_dict(raw: dict[str, Any], family_training: bool = True) -> Config:
    """A validated ``Config`` from a plain mapping, over the training defaults of its network's family
    (``family_training=False``: the mapping alone)."""
    if not isinstance(raw, dict):
        raise VsrkitError("config: the file must hold a mapping at the top level")
    if family_training:
        model = raw.get("model")
        raw = merge_under(family_defaults(model.get("arch") if isinstance(model, dict) else None), raw)
    cfg = _build(Config, raw)
    _check(cfg)
    return cfg


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.sub=value`` strings applied to a raw mapping; values are read as YAML."""
    for item in overrides:
        if "=" not in item:
            raise VsrkitError(f"--set {item!r}: expected key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise VsrkitError(f"--set {item!r}: bad key {key!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise VsrkitError(f"--set {key}: cannot read the value {text!r} ({str(e).splitlines()[0]})") from None
        node = raw
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise VsrkitError(f"--set {key}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file; unreadable or malformed files are one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise VsrkitError(f"config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise VsrkitError(f"{path}:{where}: not valid YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VsrkitError(f"cannot read config {path}: {e}") from None
    if raw is None:
        raise VsrkitError(f"{path}: the config is empty")
    if not isinstance(raw, dict):
        raise VsrkitError(f"{path}: the config must be a mapping of sections")
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML training config."""
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    try:
        return from_dict(raw)
    except VsrkitError as e:
        raise VsrkitError(f"{path}: {e}") from None


def to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (saved in checkpoints)."""
    return dataclasses.asdict(cfg)
