"""The training loop: BasicSR's iteration order, exact resumes, DDP, mixed precision, validation through the
inference engine, TensorBoard and a progress bar.

One iteration ``n`` (1-based), as ``basicsr/train.py`` and the video models do it:

1. the learning rates are the scheduler's values at epoch ``n - 1`` (``CosineRestart``);
2. modules are frozen or unfrozen for iteration ``n`` (``Freezer``: fix_flow / tsa_iter);
3. gradients set to None, forward (under autocast for bf16/fp16), loss in float32, backward (through a
   GradScaler for fp16), optional gradient clipping, the optimizer step (Adam, or SGD);
4. the EMA of the weights;
5. with a ``gan`` section (RealBasicVSR's second stage, mmagic's ``RealBasicVSR.train_step``): the generator's loss
   of step 3 also holds the perceptual and adversarial terms (the discriminator frozen), and after it the
   discriminator takes one step: its loss on the real images backward, then on the (detached) output, then Adam.

The generator's loss is the pixel loss, plus the cleaning loss (``loss.cleaning_weight``: the cleaned LR clip
against the area-shrunk pixel target), the perceptual loss (``perceptual``) and the adversarial loss (``gan``);
the pixel, perceptual and real images are the unsharp-masked ground truth where the sections say ``sharpened_gt``.

Every ``val.every`` iterations rank 0 runs the network over the validation clips through
``vsrkit.infer.upscale_tensor`` (the engine with the model's spec, exactly as inference runs it) and logs
PSNR/SSIM (``vsrkit.eval.metrics``). Every ``train.save_every`` iterations (and at the end) rank 0 writes a
training checkpoint (``vsrkit.train.checkpoint``) and the network's weights for ``load_model``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import load_state_dict, load_strict, save_weights, write_atomic_text
from vsrkit.hub.detect import convert as convert_checkpoint
from vsrkit.hub.loader import build
from vsrkit.models.registry import family_of_arch
from vsrkit.train import checkpoint as ckpt
from vsrkit.train.config import Config, to_dict
from vsrkit.train.distributed import DistInfo, TrainSampler, barrier, select_device
from vsrkit.train.ema import EMA
from vsrkit.train.losses import (GANLoss, cleaning_target, make_discriminator, make_loss, make_perceptual,
                                  sharpened)
from vsrkit.train.optim import Freezer, make_optimizer, make_scheduler

log = logging.getLogger(__name__)

__all__ = ["Trainer", "export_kwargs"]


def _family(arch: str) -> str:
    """The family of the network class ``arch`` (a config's ``model.arch``)."""
    try:
        return family_of_arch(arch)
    except VsrkitError:
        raise VsrkitError(f"config: model.arch {arch!r} is not a vsrkit network class") from None


def export_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments as saved with the weights: the ``*_path`` and ``*_pretrained`` arguments (pretrained
    SpyNet/EDVR files that only initialise a network; mmagic names them ``spynet_pretrained``) are left out, since
    the saved weights replace them."""
    return {k: v for k, v in kwargs.items() if not k.endswith(("_path", "_pretrained"))}


def init_weights(model: nn.Module, path: str, strict: bool, what: str) -> int:
    """Load starting weights; non-strict loading keeps the keys whose name and shape fit (as BasicSR with
    ``strict_load_g: false``) and needs at least one. Returns the number of tensors loaded."""
    sd = convert_checkpoint(_family(type(model).__name__), load_state_dict(path))
    if strict:
        load_strict(model, sd, source=path, what=what)
        return len(sd)
    own = model.state_dict()
    fit = {k: v for k, v in sd.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not fit:
        raise VsrkitError(f"{path}: no tensor fits {what} (model.init_strict is false)")
    model.load_state_dict(fit, strict=False)
    log.info("%s: loaded %d of %d tensors into %s", path, len(fit), len(own), what)
    return len(fit)


def widen_weights(model: nn.Module, path: str, what: str) -> int:
    """Start a wider network from a trained narrower one of the same layout (Net2Net-style widening with zeros).

    Every tensor of the narrow network fills the leading corner of the wide one's; the new output channels keep
    their fresh initialisation, and the old output channels get zero weights from the new input channels. The
    wide network therefore computes exactly the narrow one's function at the start, and the new channels learn
    from there. This holds where new channels are appended at the end of every channel list (RLSP: filters,
    hidden state). Returns the number of tensors widened or copied."""
    sd = convert_checkpoint(_family(type(model).__name__), load_state_dict(path))
    own = model.state_dict()
    missing = sorted(set(own) ^ set(sd))
    if missing:
        raise VsrkitError(f"{path}: cannot widen into {what}: key {missing[0]!r} is in only one of them")
    with torch.no_grad():
        for key, small in sd.items():
            big = own[key]
            if small.dim() != big.dim() or any(s > b for s, b in zip(small.shape, big.shape)):
                raise VsrkitError(f"{path}: cannot widen {key} of shape {tuple(small.shape)} into {tuple(big.shape)}")
            if big.dim() >= 2:  # weights (out, in, ...): old outputs do not see new inputs
                big[: small.shape[0], small.shape[1]:] = 0
            big[tuple(slice(0, s) for s in small.shape)] = small.to(big.dtype)
    model.load_state_dict(own)
    log.info("%s: widened %d tensors into %s", path, len(sd), what)
    return len(sd)


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type != "cuda":
        raise VsrkitError("train.precision fp16 needs a GPU (use bf16 on the CPU)")
    return torch.float16


def _one_line_worker_error(e: VsrkitError) -> VsrkitError:
    """A VsrkitError re-raised from a DataLoader worker carries the worker's traceback: keep its message only."""
    text = str(e).strip().splitlines()
    if len(text) > 1:
        last = text[-1]
        marker = "VsrkitError: "
        return VsrkitError(last.split(marker, 1)[1] if marker in last else last)
    return e


def _batches(loader: DataLoader) -> Iterator[dict[str, Any]]:
    it = iter(loader)
    while True:
        try:
            yield next(it)
        except VsrkitError as e:
            raise _one_line_worker_error(e) from None


class Trainer:
    """A training run of one config: the network, its EMA, optimizer, schedule, and the loop.

    ``train_step(lq, gt)`` is one iteration on a given batch (the golden tests drive it directly); ``fit()`` runs
    the whole config with its datasets, logging, validation and checkpoints.
    """

    def __init__(self, cfg: Config, info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.info = info or DistInfo(device=select_device(cfg.train.device))
        self.device = self.info.device
        if cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
            torch.use_deterministic_algorithms(True)
        self.family = _family(cfg.model.arch)
        torch.manual_seed(cfg.seed)
        model = build(self.family, cfg.model.arch, dict(cfg.model.kwargs))
        if cfg.model.init and cfg.model.init_widen:
            widen_weights(model, cfg.model.init, cfg.model.arch)
        elif cfg.model.init:
            init_weights(model, cfg.model.init, cfg.model.init_strict, cfg.model.arch)
        model.to(self.device)
        if cfg.train.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model.train()
        self.spec = model.spec
        self.ema = EMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
        self.optimizer = make_optimizer(model, cfg.optim)
        self.scheduler = make_scheduler(self.optimizer, cfg.scheduler)
        self.freezer = Freezer(cfg.freeze)
        self.loss_fn = make_loss(cfg.loss)
        self.perceptual = make_perceptual(cfg.perceptual).to(self.device) if cfg.perceptual is not None else None
        self.disc: nn.Module | None = None
        self.d_optimizer: torch.optim.Optimizer | None = None
        if cfg.gan is not None:
            g = cfg.gan
            self.disc = make_discriminator(g).to(self.device).train()
            self.d_optimizer = torch.optim.Adam(self.disc.parameters(), lr=g.lr, betas=tuple(g.betas),
                                                weight_decay=g.weight_decay)
            self.gan_loss = GANLoss(g.weight, g.real_label, g.fake_label)
        self._ddp_disc: nn.Module | None = None
        self.last_losses: dict[str, float] = {}
        self.amp_dtype = _amp_dtype(cfg.train.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.iteration = 0
        self._ddp: nn.Module | None = None
        self._ddp_key: tuple[bool, ...] | None = None
        self.output = Path(cfg.output)

    # ------------------------------------------------------------------------------------------ one step
    def target(self, gt: torch.Tensor) -> torch.Tensor:
        """The ground truth the network's output is compared with: the centre frame of a window model's clip."""
        kind = self.spec.temporal.kind
        if kind == "window" and gt.dim() == 5:
            return gt[:, self.spec.temporal.window - 1 - self.spec.temporal.ahead]
        if kind == "frame" and gt.dim() == 5:
            return gt.flatten(0, 1)
        return gt

    def _input(self, lq: torch.Tensor) -> torch.Tensor:
        if self.spec.temporal.kind == "frame" and lq.dim() == 5:
            lq = lq.flatten(0, 1)
        if self.cfg.train.channels_last and lq.dim() == 4:
            lq = lq.contiguous(memory_format=torch.channels_last)
        return lq

    def _net(self) -> nn.Module:
        """The network to call: DDP-wrapped in a distributed run, rebuilt when the set of trained parameters changes
        (DDP reduces the gradients of the parameters that required grad when it was built)."""
        if not self.info.distributed:
            return self.model
        key = tuple(p.requires_grad for p in self.model.parameters())
        if self._ddp is None or key != self._ddp_key:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DDP(self.model, device_ids=ids)
            self._ddp_key = key
        return self._ddp

    def set_iteration_state(self, iteration: int) -> list[float]:
        """Learning rates and frozen modules for iteration ``iteration`` (1-based); returns the rates."""
        self.freezer.apply(self.model, iteration)
        lrs = self.scheduler.lrs(iteration - 1)
        self.scheduler.last_epoch = iteration - 1
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        return lrs

    def _targets(self, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """The pixel, perceptual and real (GAN) targets of a batch: the ground truth, or its unsharp-masked
        version where the config says ``sharpened_gt`` (made once, on the CPU)."""
        cfg = self.cfg
        wants = {"pixel": cfg.loss.sharpened_gt,
                 "percep": cfg.perceptual is not None and cfg.perceptual.sharpened_gt,
                 "gan": cfg.gan is not None and cfg.gan.sharpened_gt}
        plain = self.target(gt.to(self.device, non_blocking=True))
        sharp = self.target(sharpened(gt).to(self.device)) if any(wants.values()) else None
        return {k: (sharp if w else plain) for k, w in wants.items()}

    def train_step(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """One iteration on a batch; returns the generator's loss (a detached float32 scalar). The terms are kept
        in ``last_losses`` (and the discriminator's, with a ``gan`` section)."""
        it = self.iteration + 1
        self.set_iteration_state(it)
        net = self._net()
        cfg = self.cfg
        lq = self._input(lq.to(self.device, non_blocking=True))
        targets = self._targets(gt)
        target = targets["pixel"]
        cleaning = cfg.loss.cleaning_weight > 0
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            out = net(lq, return_lqs=True) if cleaning else net(lq)
        if cleaning:
            out, cleaned = out
        loss = self.loss_fn(out.float(), target.float())
        terms = {"pixel": loss.detach()}
        if cleaning:
            clean = F.l1_loss(cleaned.float(), cleaning_target(target.float(), self.spec.scale))
            clean = clean * cfg.loss.cleaning_weight
            terms["cleaning"] = clean.detach()
            loss = loss + clean
        if self.perceptual is not None or self.disc is not None:
            images = out.float().flatten(0, -4)  # frames as images: [b * t, c, h, w]
        if self.perceptual is not None:
            percep = self.perceptual(images, targets["percep"].float().flatten(0, -4))
            terms["perceptual"] = percep.detach()
            loss = loss + percep
        if self.disc is not None:
            self.disc.requires_grad_(False)
            adv = self.gan_loss(self.disc(images), target_is_real=True, is_disc=False)
            terms["gan"] = adv.detach()
            loss = loss + adv
        clip = self.cfg.train.grad_clip
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip > 0:
                self.scaler.unscale_(self.optimizer)
                self._clip(clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip > 0:
                self._clip(clip)
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        if self.disc is not None:
            terms.update(self._disc_step(images.detach(), targets["gan"].float().flatten(0, -4)))
        self.iteration = it
        self.last_losses = {k: float(v) for k, v in terms.items()}
        return loss.detach()

    def _disc_step(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator step (mmagic's ``d_step_with_optim``): the real images' loss backward, then the
        generated ones', then the optimizer step."""
        assert self.disc is not None and self.d_optimizer is not None
        self.disc.requires_grad_(True)
        disc = self.disc
        if self.info.distributed:  # the generator's step calls the bare module: only this step reduces gradients
            if self._ddp_disc is None:
                from torch.nn.parallel import DistributedDataParallel as DDP

                self._ddp_disc = DDP(self.disc, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            disc = self._ddp_disc
        self.d_optimizer.zero_grad(set_to_none=True)
        d_real = self.gan_loss(disc(real), target_is_real=True, is_disc=True)
        d_real.backward()
        d_fake = self.gan_loss(disc(fake), target_is_real=False, is_disc=True)
        d_fake.backward()
        self.d_optimizer.step()
        return {"d_real": d_real.detach(), "d_fake": d_fake.detach()}

    def _clip(self, max_norm: float) -> None:
        params = [p for p in self.model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    # ------------------------------------------------------------------------------------------ state
    def network_meta(self) -> dict[str, Any]:
        return {"family": self.family, "arch": self.cfg.model.arch, "kwargs": export_kwargs(self.cfg.model.kwargs)}

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every tensor and every other value needed to continue exactly."""
        tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        osd = self.optimizer.state_dict()
        for pid, st in osd["state"].items():
            for k, v in st.items():
                tensors[f"optim.state.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        if self.disc is not None and self.d_optimizer is not None:
            tensors.update({f"disc.{k}": v for k, v in self.disc.state_dict().items()})
            for pid, st in self.d_optimizer.state_dict()["state"].items():
                for k, v in st.items():
                    tensors[f"d_optim.state.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        np_state = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in osd["param_groups"]]
        train = {
            "iteration": self.iteration,
            "config": to_dict(self.cfg),
            "optimizer": {"param_groups": groups},
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": {"python": _jsonable(random.getstate()),
                    "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])]},
            "world_size": self.info.world_size,
        }
        if self.d_optimizer is not None:
            train["d_optimizer"] = {"param_groups": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
                                                     for g in self.d_optimizer.state_dict()["param_groups"]]}
        return tensors, train

    def load_state(self, tensors: dict[str, torch.Tensor], train: dict[str, Any], source: str) -> None:
        """Restore what ``state`` saved."""
        model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        load_strict(self.model, model_sd, source=source, what=self.cfg.model.arch)
        if self.ema is not None:
            ema_sd = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
            if not ema_sd:
                raise VsrkitError(f"{source}: holds no EMA weights, but train.ema_decay is set")
            self.ema.load_state_dict(ema_sd)
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim.state."):
                pid, name = k[len("optim.state."):].split(".", 1)
                state.setdefault(int(pid), {})[name] = v
        groups = train["optimizer"]["param_groups"]
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        if len(groups) != len(self.optimizer.param_groups):
            raise VsrkitError(f"{source}: {len(groups)} optimizer groups, the config makes "
                              f"{len(self.optimizer.param_groups)} (optim.lr_mul changed?)")
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        if self.disc is not None and self.d_optimizer is not None:
            disc_sd = {k[len("disc."):]: v for k, v in tensors.items() if k.startswith("disc.")}
            if not disc_sd or "d_optimizer" not in train:
                raise VsrkitError(f"{source}: holds no discriminator, but the config has a gan section")
            load_strict(self.disc, disc_sd, source=source, what=self.cfg.gan.arch)
            d_state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith("d_optim.state."):
                    pid, name = k[len("d_optim.state."):].split(".", 1)
                    d_state.setdefault(int(pid), {})[name] = v
            d_groups = train["d_optimizer"]["param_groups"]
            for g in d_groups:
                if "betas" in g:
                    g["betas"] = tuple(g["betas"])
            self.d_optimizer.load_state_dict({"state": d_state, "param_groups": d_groups})
        self.scheduler.load_state_dict(train["scheduler"])
        if self.scaler is not None and train.get("scaler"):
            self.scaler.load_state_dict(train["scaler"])
        torch.set_rng_state(tensors["rng.torch"])
        cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")),
                                           key=lambda k: int(k.rsplit(".", 1)[1]))]
        if cuda and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(cuda)
        py = train["rng"]["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        name, pos, has_gauss, gauss = train["rng"]["numpy"]
        np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
        self.iteration = int(train["iteration"])
        self.set_iteration_state(max(self.iteration, 1))
        self._ddp = None

    def save(self) -> Path:
        """Write the training checkpoint of this iteration and the network's weights (rank 0)."""
        folder = self.output / "checkpoints"
        name = ckpt.checkpoint_name(self.iteration)
        tensors, train = self.state()
        ckpt.save_checkpoint(folder / name, tensors, self.network_meta(), train)
        meta = self.network_meta()
        weights = self.output / "weights"
        save_weights(weights / f"net_g_{self.iteration:08d}.safetensors", self.model.state_dict(), **meta)
        if self.ema is not None:
            save_weights(weights / f"net_g_ema_{self.iteration:08d}.safetensors", self.ema.state_dict(), **meta)
        ckpt.write_latest(folder, self.iteration, name)
        keep = self.cfg.train.keep
        if keep > 0:
            olds = sorted(folder.glob("iter_*.safetensors"))[:-keep]
            for p in olds:
                p.unlink(missing_ok=True)
        return folder / name

    def resume(self) -> bool:
        """Continue from the newest checkpoint of ``output``; False when there is none."""
        folder = self.output / "checkpoints"
        path = ckpt.find_latest(folder)
        if path is None:
            return False
        tensors, network, train = ckpt.load_checkpoint(path)
        if network.get("arch") != self.cfg.model.arch:
            raise VsrkitError(f"{path}: a {network.get('arch')} checkpoint, but the config trains {self.cfg.model.arch}")
        self.load_state(tensors, train, str(path))
        return True

    # ------------------------------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self, dataset: Any) -> dict[str, Any]:
        """PSNR (and SSIM) over whole validation clips, run through the inference engine."""
        from vsrkit.eval.metrics import psnr, ssim
        from vsrkit.infer.engine import upscale_tensor
        from vsrkit.infer.runtime import EngineConfig
        from vsrkit.models.spec import Protocol

        vcfg = self.cfg.val
        model = self.ema.module if (vcfg.use_ema and self.ema is not None) else self.model
        was_training = model.training
        model.eval()
        protocol = Protocol(end_padding=vcfg.end_padding) if vcfg.end_padding else None
        engine = EngineConfig(device=self.device, protocol=protocol)
        per_clip, samples = {}, []
        try:
            for i in range(len(dataset)):
                item = dataset[i]
                out = upscale_tensor(model, item["lq"], engine).cpu()
                gt = item["gt"]
                if out.shape != gt.shape:
                    raise VsrkitError(f"validation clip {item['name']}: output {tuple(out.shape)} does not match the "
                                      f"ground truth {tuple(gt.shape)}")
                o8, g8 = _to_uint8(out), _to_uint8(gt)
                ps, ss = [], []
                for a, b in zip(o8, g8):
                    ps.append(psnr(a, b, vcfg.crop_border, vcfg.y_channel))
                    if vcfg.ssim:
                        ss.append(ssim(a, b, vcfg.crop_border, vcfg.y_channel))
                per_clip[item["name"]] = (float(np.mean(ps)), float(np.mean(ss)) if ss else None)
                if i < vcfg.samples:
                    samples.append((item["name"], out[0].clamp(0, 1), gt[0]))
        finally:
            model.train(was_training)
        result = {"psnr": float(np.mean([p for p, _ in per_clip.values()])),
                  "clips": {k: {"psnr": p, "ssim": s} for k, (p, s) in per_clip.items()}}
        if vcfg.ssim:
            result["ssim"] = float(np.mean([s for _, s in per_clip.values()]))
        result["samples"] = samples
        return result

    # ------------------------------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
        """Train to ``train.total_iter`` with the config's data; returns the last validation (if any)."""
        cfg, info = self.cfg, self.info
        if cfg.data is None:
            raise VsrkitError("config: missing key data")
        from vsrkit.data.datasets import build_train_dataset, build_val_dataset

        folder = self.output / "checkpoints"
        if resume:
            if not self.resume():
                say(f"no checkpoint in {folder}: starting at iteration 0")
            else:
                say(f"resumed from iteration {self.iteration} ({ckpt.find_latest(folder)})")
        elif info.is_main and ckpt.find_latest(folder) is not None:
            raise VsrkitError(f"{self.output} already holds a training run: use --resume, or another output")
        barrier(info)
        data = build_train_dataset(cfg.data)
        val_data = build_val_dataset(cfg.val.data) if (cfg.val.every and cfg.val.data and info.is_main) else None
        B, W = cfg.train.batch_size, info.world_size
        sampler = TrainSampler(len(data), cfg.seed, info.rank, W, start=self.iteration * B * W)
        nw = cfg.train.num_workers
        loader = DataLoader(data, batch_size=B, sampler=sampler, num_workers=nw, pin_memory=self.device.type == "cuda",
                            persistent_workers=nw > 0, prefetch_factor=2 if nw > 0 else None)
        writer = None
        if info.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            write_atomic_text(self.output / "config.yml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
            _truncate_log(self.output / "log.jsonl", self.iteration)
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
                tmp.unlink(missing_ok=True)  # a save cut short by a crash
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.output / "tb"), purge_step=self.iteration + 1)
            say(f"training {cfg.model.arch} ({sum(p.numel() for p in self.model.parameters()):,} parameters) on "
                f"{self.device}, {W} process(es): effective batch {B} x {W} = {B * W}, "
                f"{len(data)} clips, iterations {self.iteration + 1}..{cfg.train.total_iter}")
        total = cfg.train.total_iter
        last_val: dict[str, Any] = {}
        from tqdm import tqdm

        bar = tqdm(total=total, initial=self.iteration, unit="it", dynamic_ncols=True, smoothing=0.1,
                   disable=not (info.is_main and cfg.train.progress))
        t0 = time.time()
        try:
            for batch in _batches(loader):
                if self.iteration >= total:
                    break
                loss = self.train_step(batch["lq"], batch["gt"])
                it = self.iteration
                bar.update(1)
                if it % cfg.train.log_every == 0 or it == total:
                    value = loss.clone()
                    if info.distributed:
                        import torch.distributed as dist

                        dist.all_reduce(value)
                        value /= W
                    value = float(value)
                    if not math.isfinite(value):
                        raise VsrkitError(f"iteration {it}: the loss is {value}; lower optim.lr or use fp32")
                    if info.is_main:
                        lrs = [g["lr"] for g in self.optimizer.param_groups]
                        entry = {"iter": it, "loss": value, "lr": lrs, "time": round(time.time() - t0, 3)}
                        if len(self.last_losses) > 1:  # the terms of a composite loss (this rank's)
                            entry["losses"] = self.last_losses
                            for k, v in self.last_losses.items():
                                writer.add_scalar(f"train/loss_{k}", v, it)
                        _append_log(self.output / "log.jsonl", entry)
                        writer.add_scalar("train/loss", value, it)
                        for i, lr in enumerate(lrs):
                            writer.add_scalar(f"train/lr_group{i}", lr, it)
                        bar.set_postfix(loss=f"{value:.4g}")
                if cfg.val.every and it % cfg.val.every == 0:
                    if info.is_main:
                        last_val = self._validate_and_log(val_data, writer, it, say)
                    barrier(info)
                if it % cfg.train.save_every == 0 or it == total:
                    if info.is_main:
                        self.save()
                    barrier(info)
                if it >= total:
                    break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return last_val

    def _validate_and_log(self, val_data: Any, writer: Any, it: int, say: Callable[[str], None]) -> dict[str, Any]:
        res = self.validate(val_data)
        samples = res.pop("samples")
        writer.add_scalar("val/psnr", res["psnr"], it)
        if "ssim" in res:
            writer.add_scalar("val/ssim", res["ssim"], it)
        for name, out, gt in samples:
            writer.add_image(f"val/{name}", _crop_pair(out, gt), it)
        _append_log(self.output / "log.jsonl", {"iter": it, "val": res})
        say(f"iteration {it}: validation PSNR {res['psnr']:.3f} dB" + (f", SSIM {res['ssim']:.4f}" if "ssim" in res else ""))
        return res


# ---------------------------------------------------------------------------------------------- helpers

def _jsonable(x: Any) -> Any:
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    return x


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) float -> T x H x W (x C) uint8, as BasicSR's tensor2img rounds."""
    a = (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return a[..., 0] if a.shape[-1] == 1 else a


def _crop_pair(out: torch.Tensor, gt: torch.Tensor, size: int = 256) -> torch.Tensor:
    """The centre of output and ground truth side by side, at most ``size`` pixels square each (for TensorBoard)."""
    _, h, w = out.shape
    y, x = max((h - size) // 2, 0), max((w - size) // 2, 0)
    a, b = out[:, y:y + size, x:x + size], gt[:, y:y + size, x:x + size]
    return torch.cat([a, b], dim=2).clamp(0, 1)


def _append_log(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def _truncate_log(path: Path, iteration: int) -> None:
    """Drop log entries past ``iteration`` (written after the checkpoint a resume starts from)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("iter", 0) <= iteration:
                keep.append(line)
        except ValueError:
            continue  # a line cut short by a crash
    write_atomic_text(path, "".join(f"{line}\n" for line in keep))


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a run's ``log.jsonl``."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def run(cfg: Config, resume: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a config in this process, joining torchrun's process group if there is one."""
    from vsrkit.train.distributed import setup, teardown

    info = setup(cfg.train.device)
    try:
        trainer = Trainer(cfg, info)
        quiet = (lambda _m: None) if not info.is_main else say
        return trainer.fit(resume=resume, say=quiet)
    finally:
        teardown()

