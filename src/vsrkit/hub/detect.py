"""Recognising a checkpoint's architecture and constructor arguments from its keys and shapes.

Each family declares its condition: the keys that must be present (``Rule.needs``) and a reader that
turns a state dict into ``(class name, kwargs)``. The rules are checked in the order of ``RULES``; the
first whose keys are present decides (its reader may still refuse the file with a clear error). Shared
helpers: ``count_blocks`` (the one block counter) and ``check_fits`` (the one strict key/shape check).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import check_fits
from vsrkit.hub.pretrained import OFFICIAL_CONFIGS
from vsrkit.hub.tfbundle import OPTIMISER_NAMES, OPTIMISER_SUFFIXES, read_variables
from vsrkit.models import edgesr

Found = tuple[str, dict[str, Any]]


def count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many numbered blocks ``prefix<i>.`` a state dict holds (0, 1, ... without gaps)."""
    ids = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if ids != set(range(len(ids))):
        raise VsrkitError(f"checkpoint has non-contiguous blocks under {prefix!r}: cannot tell how many there are")
    return len(ids)


# ----------------------------------------------------------------------------------------------------------
# BasicVSR and IconVSR (BasicSR names)

def detect_basicvsr(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a BasicSR BasicVSR or IconVSR state dict and read its constructor kwargs.

    ``num_feat`` comes from the trunk's first convolution and ``num_block`` from the number of
    residual blocks in the trunks. For IconVSR ``temporal_padding`` comes from the TSA fusion width
    (``2 * temporal_padding + 1`` frames: 2 for the REDS checkpoint, 3 for Vimeo-90K);
    ``keyframe_stride`` is not stored in the file (it changes no weight) and is set to the official
    value 5, the one every released IconVSR checkpoint was trained and tested with.
    Returns ``None`` for other families (including mmediting's differently named BasicVSR).
    """
    required = ("spynet.basic_module.0.basic_module.0.weight", "backward_trunk.main.0.weight",
                "forward_trunk.main.0.weight", "upconv1.weight", "conv_last.weight")
    if not all(k in state_dict for k in required):
        return None
    backward_first = state_dict["backward_trunk.main.0.weight"]
    forward_first = state_dict["forward_trunk.main.0.weight"]
    num_feat = int(backward_first.shape[0])
    num_block = count_blocks(state_dict, "backward_trunk.main.2.")
    if count_blocks(state_dict, "forward_trunk.main.2.") != num_block:
        raise VsrkitError("checkpoint has unequal backward and forward residual blocks: cannot tell num_block")
    is_icon = any(k.startswith("edvr.") for k in state_dict) or "backward_fusion.weight" in state_dict
    if not is_icon:
        if "fusion.weight" not in state_dict or backward_first.shape[1] != num_feat + 3:
            return None
        return "BasicVSR", {"num_feat": num_feat, "num_block": num_block}
    if forward_first.shape[1] != 2 * num_feat + 3:
        return None
    tsa = state_dict.get("edvr.fusion.feat_fusion.weight")
    if tsa is None or tsa.shape[1] % num_feat:
        raise VsrkitError("IconVSR checkpoint without a readable edvr.fusion.feat_fusion: cannot tell temporal_padding")
    num_frame = tsa.shape[1] // num_feat
    if num_frame % 2 == 0:
        raise VsrkitError(f"IconVSR checkpoint fuses {num_frame} frames (even): cannot tell temporal_padding")
    return "IconVSR", {
        "num_feat": num_feat,
        "num_block": num_block,
        "keyframe_stride": 5,
        "temporal_padding": (num_frame - 1) // 2,
    }


# ----------------------------------------------------------------------------------------------------------
# EDVR (BasicSR names, or the original xinntao/EDVR names converted first)

def _is_original_format(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("pcd_align.L1_", "tsa_fusion.", "recon_trunk.")) for k in sd)


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a checkpoint of the original xinntao/EDVR code to BasicSR names (others pass unchanged).

    The mapping is the inverse of BasicSR's ``scripts/model_conversion/convert_models.py:convert_edvr``
    (note the swap there: ``tAtt_1`` is ``temporal_attn2`` and ``tAtt_2`` is ``temporal_attn1``).
    """
    if not _is_original_format(sd):
        return dict(sd)
    out: dict[str, torch.Tensor] = {}
    rules: list[tuple[str, str]] = [
        (r"^pre_deblur\.conv_first_1\.", "predeblur.conv_first."),
        (r"^pre_deblur\.conv_first_2\.", "predeblur.stride_conv_hr1."),
        (r"^pre_deblur\.conv_first_3\.", "predeblur.stride_conv_hr2."),
        (r"^pre_deblur\.conv_first\.", "predeblur.conv_first."),
        (r"^pre_deblur\.deblur_L2_conv\.", "predeblur.stride_conv_l2."),
        (r"^pre_deblur\.deblur_L3_conv\.", "predeblur.stride_conv_l3."),
        (r"^pre_deblur\.RB_L3_1\.", "predeblur.resblock_l3."),
        (r"^pre_deblur\.RB_L2_(\d)\.", r"predeblur.resblock_l2_\1."),
        (r"^fea_L([23])_conv(\d)\.", r"conv_l\1_\2."),
        (r"^pcd_align\.L(\d)_dcnpack\.conv_offset_mask\.", r"pcd_align.dcn_pack.l\1.conv_offset."),
        (r"^pcd_align\.L(\d)_dcnpack\.", r"pcd_align.dcn_pack.l\1."),
        (r"^pcd_align\.L(\d)_offset_conv(\d)\.", r"pcd_align.offset_conv\2.l\1."),
        (r"^pcd_align\.L(\d)_fea_conv\.", r"pcd_align.feat_conv.l\1."),
        (r"^pcd_align\.cas_dcnpack\.conv_offset_mask\.", "pcd_align.cas_dcnpack.conv_offset."),
        (r"^tsa_fusion\.tAtt_1\.", "fusion.temporal_attn2."),
        (r"^tsa_fusion\.tAtt_2\.", "fusion.temporal_attn1."),
        (r"^tsa_fusion\.fea_fusion\.", "fusion.feat_fusion."),
        (r"^tsa_fusion\.sAtt_add_(\d)\.", r"fusion.spatial_attn_add\1."),
        (r"^tsa_fusion\.sAtt_L(\d)\.", r"fusion.spatial_attn_l\1."),
        (r"^tsa_fusion\.sAtt_(\d)\.", r"fusion.spatial_attn\1."),
        (r"^tsa_fusion\.", "fusion."),
        (r"^recon_trunk\.", "reconstruction."),
        (r"^HRconv\.", "conv_hr."),
    ]
    for k, v in sd.items():
        m = re.match(r"^pre_deblur\.RB_L1_(\d)\.(.*)$", k)
        if m:
            out[f"predeblur.resblock_l1.{int(m.group(1)) - 1}.{m.group(2)}"] = v
            continue
        new = k
        for pat, rep in rules:
            if re.match(pat, k):
                new = re.sub(pat, rep, k)
                break
        out[new] = v
    return out


def detect_edvr(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """``("EDVR", kwargs)`` for an EDVR checkpoint (BasicSR or original names), else ``None``.

    IconVSR checkpoints (EDVR modules under ``edvr.`` beside BasicVSR trunks) and BasicSR's
    ``EDVR_*_pretrained_for_IconVSR`` feature extractors (no reconstruction part) are not EDVR models.
    """
    sd = convert_state_dict(state_dict)
    need = (
        "pcd_align.cas_dcnpack.weight",
        "pcd_align.dcn_pack.l1.conv_offset.weight",
        "upconv1.weight",
        "conv_last.weight",
    )
    if not all(k in sd for k in need):
        return None
    num_feat = sd["conv_l2_1.weight"].shape[0] if "conv_l2_1.weight" in sd else sd["upconv1.weight"].shape[1]
    off_out, _, kh, kw = sd["pcd_align.dcn_pack.l1.conv_offset.weight"].shape
    if off_out % (3 * kh * kw):
        raise VsrkitError(f"EDVR checkpoint: cannot tell deformable_groups from conv_offset with {off_out} channels")
    with_tsa = "fusion.temporal_attn1.weight" in sd
    fusion_in = sd["fusion.feat_fusion.weight" if with_tsa else "fusion.weight"].shape[1]
    if fusion_in % num_feat:
        raise VsrkitError(f"EDVR checkpoint: cannot tell num_frame from a fusion of {fusion_in} input channels")
    with_predeblur = "predeblur.conv_first.weight" in sd
    first = sd["predeblur.conv_first.weight" if with_predeblur else "conv_first.weight"]
    kwargs = dict(
        num_in_ch=first.shape[1],
        num_out_ch=3,  # unused by BasicSR's EDVR (conv_last always has 3 outputs)
        num_feat=num_feat,
        num_frame=fusion_in // num_feat,
        deformable_groups=off_out // (3 * kh * kw),
        num_extract_block=count_blocks(sd, "feature_extraction."),
        num_reconstruct_block=count_blocks(sd, "reconstruction."),
        hr_in="predeblur.stride_conv_hr1.weight" in sd,
        with_predeblur=with_predeblur,
        with_tsa=with_tsa,
    )
    return "EDVR", kwargs


# ----------------------------------------------------------------------------------------------------------
# RLSP (the official PyTorch port)

def detect_rlsp(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """Recognise an RLSP state dict (``conv1``, ``conv_list.<i>``, ``conv_out``) and read its configuration.

    ``layers``, ``filters`` and ``kernel_size`` are read directly. ``in_channels``, ``factor``, ``state_dim``
    and the ablation switches are solved from the channel counts of ``conv1`` (input) and ``conv_out``
    (output), which do not always tell them apart: among the configurations that fit, the first in this
    order is taken: a state as wide as the filters (as in every released RLSP model) or none before other
    widths, then factor 4 (the only one the paper and code use) before factors 2-8, then all inputs
    (neighbours and feedback) before ablations, then RGB before Y. So a checkpoint of an unusual
    configuration whose channel counts also fit a more usual one is read as the usual one (this cannot
    be told from the file). The file name is not used.
    """
    keys = set(state_dict)
    if not {"conv1.weight", "conv1.bias", "conv_out.weight", "conv_out.bias"} <= keys:
        return None
    n_list = count_blocks(state_dict, "conv_list.")
    expected = {"conv1.weight", "conv1.bias", "conv_out.weight", "conv_out.bias"}
    expected |= {f"conv_list.{i}.{p}" for i in range(n_list) for p in ("weight", "bias")}
    if keys != expected:
        return None
    w1, wo = state_dict["conv1.weight"], state_dict["conv_out.weight"]
    if w1.ndim != 4 or wo.ndim != 4:
        return None
    filters, n_in, k, _ = w1.shape
    n_out = wo.shape[0]
    cands = []
    for factor in range(2, 9):
        for c in (3, 1):
            st = n_out - c * factor**2
            if st < 0:
                continue
            for nb in (True, False):
                for fb in (True, False):
                    if n_in == c * (3 if nb else 1) + (c * factor**2 if fb else 0) + st:
                        pref = (st not in (filters, 0), factor != 4, not (nb and fb), c != 3, not nb, st != filters, factor)
                        cands.append((pref, dict(factor=factor, in_channels=c, state_dim=st, neighbours=nb, feedback=fb)))
    if not cands:
        raise VsrkitError(
            f"RLSP checkpoint: conv1 takes {n_in} channels and conv_out gives {n_out}, which fit no RLSP "
            "configuration (in_channels 1 or 3, factor 1-8)"
        )
    cands.sort(key=lambda pc: pc[0])
    cfg = cands[0][1]
    kwargs: dict[str, Any] = {
        "layers": n_list + 2,
        "filters": int(filters),
        "state_dim": int(cfg["state_dim"]),
        "kernel_size": int(k),
        "factor": int(cfg["factor"]),
        "in_channels": int(cfg["in_channels"]),
    }
    if not cfg["neighbours"]:
        kwargs["neighbours"] = False
    if not cfg["feedback"]:
        kwargs["feedback"] = False
    if cfg["state_dim"] == 0:
        kwargs["hidden_state"] = False
    return "RLSP", kwargs


# ----------------------------------------------------------------------------------------------------------
# RLSP as released (the paper's TensorFlow checkpoints: ``layerN/kernel`` HWIO, ``layerN/bias``)

TF_OPTIMISER_SUFFIXES, TF_OPTIMISER_NAMES = OPTIMISER_SUFFIXES, OPTIMISER_NAMES


def _tf_layers(sd: Mapping[str, torch.Tensor]) -> int:
    """The number of ``layerN/kernel`` + ``layerN/bias`` variables (N = 0, 1, ...), 0 if there are none."""
    n = 0
    while f"layer{n}/kernel" in sd and f"layer{n}/bias" in sd:
        n += 1
    return n


def convert_rlsp_released(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TensorFlow names and layout (``layerN/kernel`` HWIO, ``layerN/bias``) -> ``RLSPReleased``'s (``trunk.N``,
    ``state_head``, ``out_head``; OIHW): the last layer is the output head, the one before it the state head.
    The optimiser's variables (``.../Adam``, ``.../Adam_1``, ``beta1_power``, ``beta2_power``) are dropped. A
    state dict without TensorFlow names is returned as it is."""
    n = _tf_layers(sd)
    if n == 0:
        return dict(sd)
    if n < 3:
        raise VsrkitError(f"RLSP TensorFlow checkpoint: only {n} layers (layer0..layer{n - 1}); expected at least 3")
    names = {f"layer{i}": f"trunk.{i}" for i in range(n - 2)}
    names[f"layer{n - 2}"] = "state_head"
    names[f"layer{n - 1}"] = "out_head"
    out: dict[str, torch.Tensor] = {}
    for tf_name, ours in names.items():
        kernel = sd[f"{tf_name}/kernel"]
        if kernel.ndim != 4:
            raise VsrkitError(f"RLSP TensorFlow checkpoint: {tf_name}/kernel has shape {tuple(kernel.shape)}, not HWIO")
        out[f"{ours}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
        out[f"{ours}.bias"] = sd[f"{tf_name}/bias"].contiguous()
    return out


def convert_tf_checkpoint(index_path: str | Path) -> dict[str, torch.Tensor]:
    """A released RLSP TensorFlow checkpoint (its ``.index``, a ``.data`` shard or the prefix) -> ``RLSPReleased``
    state dict. Only the ``layerN/kernel`` and ``layerN/bias`` tensors are read; the Adam slots are ignored."""
    sd = read_variables(index_path)
    if _tf_layers(sd) == 0:
        raise VsrkitError(f"{index_path}: a TensorFlow checkpoint without layerN/kernel variables, not an RLSP one")
    found = detect_rlsp_released(sd)
    if found is None:
        raise VsrkitError(f"{index_path}: a TensorFlow checkpoint that is not a released RLSP model "
                          f"(variables {', '.join(list(sd)[:4])}, ...)")
    return convert_rlsp_released(sd)


def detect_rlsp_released(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> Found | None:
    """Recognise a released RLSP checkpoint, in TensorFlow names (optimiser slots allowed) or converted, and read
    ``layers``, ``filters``, ``state_dim`` and ``factor`` from its shapes: ``layer0`` takes 9 (3 RGB frames) +
    state + factor**2 channels, the state head gives the state, the output head factor**2 channels. The file
    name is not used."""
    if _tf_layers(state_dict):
        extra = [k for k in state_dict if not (re.fullmatch(r"layer\d+/(kernel|bias)", k)
                                                or k.endswith(TF_OPTIMISER_SUFFIXES) or k in TF_OPTIMISER_NAMES)]
        if extra:
            return None
        try:
            sd = convert_rlsp_released({k: v for k, v in state_dict.items() if re.fullmatch(r"layer\d+/(kernel|bias)", k)})
        except VsrkitError:
            return None
    else:
        sd = dict(state_dict)
    n_trunk = count_blocks(sd, "trunk.")
    expected = {f"{m}.{p}" for m in ["state_head", "out_head"] + [f"trunk.{i}" for i in range(n_trunk)]
                for p in ("weight", "bias")}
    if n_trunk == 0 or set(sd) != expected:
        return None
    w0, ws, wo = sd["trunk.0.weight"], sd["state_head.weight"], sd["out_head.weight"]
    if any(w.ndim != 4 or tuple(w.shape[-2:]) != (3, 3) for w in (w0, ws, wo)):
        return None
    filters, n_in = int(w0.shape[0]), int(w0.shape[1])
    state_dim, f2 = int(ws.shape[0]), int(wo.shape[0])
    factor = math.isqrt(f2)
    if factor * factor != f2 or n_in != 9 + state_dim + f2:
        return None
    return "RLSPReleased", {"layers": n_trunk + 1, "filters": filters, "state_dim": state_dim, "factor": factor}


# ----------------------------------------------------------------------------------------------------------
# edge-SR, ESPCN, FSRCNN, bicubic (pnavarre/eSR: model ids in file names)

_STEM_SUFFIXES = (".model", ".pth", ".pt", ".safetensors", ".bin", ".ckpt")


def _stem(filename: str) -> str:
    name = Path(str(filename)).name
    for suf in _STEM_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _keys_kind(sd: dict[str, torch.Tensor]) -> str | None:
    """Which edge-SR layout a state dict has from its key names alone ('filter' = MAX/TM/TR), or None."""
    keys = set(sd)
    if keys == {"filter.weight"}:
        return "filter"
    if keys == {"net.weight"}:
        return "Bicubic"
    if keys in ({"filter.0.weight", "filter.0.bias", "filter.2.weight", "filter.2.bias", "filter.4.weight"},
                {"filter.0.weight", "filter.0.bias", "filter.2.weight"}):
        return "eSR-CNN"
    if keys in ({f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")},
                {f"net.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}):
        return "ESPCN"
    if "net.0.weight" in keys and "net.1.weight" in keys and all(re.fullmatch(r"net\.\d+\.(weight|bias)", k) for k in keys):
        return "FSRCNN"
    return None


def _shape(sd: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(sd[key].shape)


def _infer(kind: str, sd: dict[str, torch.Tensor]) -> tuple[str, dict[str, int]]:
    """Hyper-parameters from shapes alone; VsrkitError naming what cannot be told."""
    hint = "keep the official file name (e.g. {}.model) or pass model_id"
    if kind == "filter":
        n, _, K, _ = _shape(sd, "filter.weight")
        cands = [(k, s, n // (m * s * s)) for k, m in (("eSR-MAX", 1), ("eSR-TM", 2), ("eSR-TR", 3))
                 for s in (2, 3, 4) if n % (m * s * s) == 0]
        if len(cands) == 1:
            k, s, C = cands[0]
            return k, {"s": s, "K": K, "C": C}
        told = ", ".join(f"{k}_s{s}_K{K}_C{C}" for k, s, C in cands) or "none"
        raise VsrkitError(
            f"edge-SR checkpoint: the variant (MAX/TM/TR), scale s and C cannot be told from filter.weight "
            f"{list(sd['filter.weight'].shape)} (it holds variant*s*s*C = {n} filters; could be {told}); "
            + hint.format("eSR-TR_s2_K7_C16")
        )
    if kind == "eSR-CNN":
        if "filter.4.weight" in sd:
            D, S, n = _shape(sd, "filter.0.weight")[0], _shape(sd, "filter.2.weight")[0], _shape(sd, "filter.4.weight")[0]
        else:
            D, S, n = 0, _shape(sd, "filter.0.weight")[0], _shape(sd, "filter.2.weight")[0]
        cands = [(s, n // (2 * s * s)) for s in (2, 3, 4) if n % (2 * s * s) == 0]
        if len(cands) == 1:
            s, C = cands[0]
            return kind, {"s": s, "C": C, "D": D, "S": S}
        told = ", ".join(f"eSR-CNN_s{s}_C{C}_D{D}_S{S}" for s, C in cands) or "none"
        raise VsrkitError(
            f"eSR-CNN checkpoint: scale s and C cannot be told from its last layer ({n} = 2*s*s*C filters; "
            f"could be {told}); " + hint.format("eSR-CNN_s2_C8_D3_S6")
        )
    if kind == "ESPCN":
        if "net.4.weight" in sd:
            D, S, n = _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0], _shape(sd, "net.4.weight")[0]
        else:
            D, S, n = 0, _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0]
        s = math.isqrt(n)
        if s * s != n or s < 2:
            raise VsrkitError(f"ESPCN checkpoint: last layer has {n} filters, not scale*scale")
        return kind, {"s": s, "D": D, "S": S}
    if kind == "FSRCNN":
        D, S = _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0]
        M = sum(1 for k in sd if k.endswith(".weight") and sd[k].ndim == 4 and sd[k].shape[-1] == 3)
        raise VsrkitError(
            f"FSRCNN checkpoint (D{D}, S{S}, M{M}): the scale s cannot be told from the weights (the 9x9 "
            "transposed convolution has the same shape at every scale); "
            + hint.format(f"FSRCNN_s2_D{D}_S{S}_M{M}")
        )
    if kind == "Bicubic":
        L = _shape(sd, "net.weight")[-1]
        for s in range(2, 9):
            if len(edgesr.bicubic_kernel(s)) + 1 == L:
                return kind, {"s": s}
        raise VsrkitError(f"Bicubic checkpoint: net.weight of size {L} matches no scale")
    raise AssertionError(kind)


def detect_edgesr(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """Recognise an edge-SR / ESPCN / FSRCNN / Bicubic checkpoint.

    With a file name in the official form (``eSR-TR_s4_K3_C5.model``, ``eSR-CNN_s2_C8_D3_S6.model``,
    ``ESPCN_s2_D64_S32.model``, ``FSRCNN_s2_D56_S12_M4.model``, ``Bicubic_s2.model``; any of the suffixes
    .model/.pth/.pt/.safetensors/.bin/.ckpt or none) the id comes from the name and is checked against the
    shapes. Without one, it is read from the shapes where they tell: ESPCN and Bicubic always, eSR-CNN and
    eSR-MAX/TM/TR only when a single scale (and variant) fits; FSRCNN never (its scale is not in the shapes).

    Returns ``(class_name, {'model_id': id})``, or None when the keys are not of this family (and the file
    name does not claim it). Raises VsrkitError when the name claims this family but does not parse or
    does not fit the weights, or when a hyper-parameter cannot be told.
    """
    kind_keys = _keys_kind(state_dict)
    stem = _stem(filename) if filename else None
    kind_name = edgesr.kind_of(stem) if stem else None
    if kind_keys is None and kind_name is None:
        return None
    if kind_name is not None:
        kind, v = edgesr.parse_model_id(stem)
        model_id = edgesr.make_id(kind, v)
        if kind_keys is None:
            first = next(iter(state_dict), None)
            raise VsrkitError(
                f"{Path(str(filename)).name} is named like an edge-SR {kind} model but its weights are not one "
                f"(first key {first!r})"
            )
        with torch.device("meta"):
            own = edgesr.build(model_id).state_dict()
        check_fits(own, state_dict, Path(str(filename)).name, f"{model_id} (is the file renamed?)")
        return edgesr.KINDS[kind][0], {"model_id": model_id}
    kind, v = _infer(kind_keys, state_dict)
    return edgesr.KINDS[kind][0], {"model_id": edgesr.make_id(kind, v)}


# ----------------------------------------------------------------------------------------------------------
# VRT

def _window_from_table(table_rows: int, tokens: int, wd: int | None = None) -> tuple[int, int, int] | None:
    """(wd, wh, ww) with wd*wh*ww == tokens and (2wd-1)(2wh-1)(2ww-1) == table_rows (square windows first)."""
    cands = []
    for d in [wd] if wd else range(1, tokens + 1):
        if tokens % d:
            continue
        hw = tokens // d
        for h in range(1, hw + 1):
            if hw % h == 0 and (2 * d - 1) * (2 * h - 1) * (2 * (hw // h) - 1) == table_rows:
                cands.append((d, h, hw // h))
    if not cands:
        return None
    cands.sort(key=lambda c: (c[1] != c[2], c))
    return cands[0]


def detect_vrt(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a VRT checkpoint and read its constructor kwargs from key names and shapes."""
    sd = state_dict
    if not ("conv_first.weight" in sd and "stage1.residual_group1.blocks.0.attn.qkv_mut.weight" in sd and "stage8.0.1.weight" in sd):
        return None

    def shape(k: str) -> tuple[int, ...]:
        if k not in sd:
            raise VsrkitError(f"VRT checkpoint: key {k!r} is missing")
        return tuple(sd[k].shape)

    kw: dict = {}
    n8 = 0
    while f"stage8.{n8 + 1}.linear.weight" in sd:
        n8 += 1
    embed, heads, depths = [], [], []
    for i in range(7):
        p = f"stage{i + 1}"
        embed.append(shape(f"{p}.residual_group1.blocks.0.norm1.weight")[0])
        heads.append(shape(f"{p}.residual_group1.blocks.0.attn.relative_position_bias_table")[1])
        depths.append((count_blocks(sd, f"{p}.residual_group1.blocks."), count_blocks(sd, f"{p}.residual_group2.blocks.")))
    for j in range(1, n8 + 1):
        p = f"stage8.{j}.residual_group"
        embed.append(shape(f"{p}.blocks.0.norm1.weight")[0])
        heads.append(shape(f"{p}.blocks.0.attn.relative_position_bias_table")[1])
        depths.append((count_blocks(sd, f"{p}.blocks."), 0))
    kw["embed_dims"] = embed
    kw["num_heads"] = heads
    kw["depths"] = [a + b for a, b in depths]
    # mul_attn_ratio: int(depth * r) mutual blocks in every stage 1-7
    for r in (0.75, *sorted({a / (a + b) for a, b in depths[:7]})):
        if all(int((a + b) * r) == a for a, b in depths[:7]):
            if r != 0.75:
                kw["mul_attn_ratio"] = r
            break
    else:
        raise VsrkitError("VRT checkpoint: cannot tell mul_attn_ratio (mutual-attention blocks per stage differ)")

    # spatial window from the mutual-attention sine position encoding and table (temporal window 2)
    pb = shape("stage1.residual_group1.blocks.0.attn.position_bias")
    t1 = shape("stage1.residual_group1.blocks.0.attn.relative_position_bias_table")[0]
    w1 = _window_from_table(t1, 2 * pb[1], wd=2)
    if w1 is None:
        raise VsrkitError("VRT checkpoint: cannot tell window_size (mutual-attention table does not fit)")
    wh, ww = w1[1], w1[2]
    # temporal window from a full-window self-attention group
    wd = None
    indep = []
    full_groups = [f"stage{i + 1}.residual_group2" for i in range(7) if depths[i][1] > 0]
    for p in full_groups:
        tokens = shape(f"{p}.blocks.0.attn.relative_position_index")[0]
        if tokens % (wh * ww) == 0:
            wd = tokens // (wh * ww)
            break
    stage8_wd = []
    for j in range(1, n8 + 1):
        tokens = shape(f"stage8.{j}.residual_group.blocks.0.attn.relative_position_index")[0]
        stage8_wd.append(tokens // (wh * ww))
    if wd is None:
        others = [d for d in stage8_wd if d != 1]
        if others:
            wd = others[0]
        elif stage8_wd:
            wd = 1
        else:
            raise VsrkitError("VRT checkpoint: cannot tell window_size (no full-window attention block)")
    if wd != 1:
        indep = [7 + j for j, d in enumerate(stage8_wd) if d == 1]
    kw["window_size"] = [wd, wh, ww]
    kw["indep_reconsts"] = indep

    dim0 = embed[0]
    c_in = shape("stage1.pa_deform.conv_offset.0.weight")[1]
    pa = (c_in - dim0) / (dim0 / 2 + 1)
    if pa not in (2, 4, 6):
        raise VsrkitError(f"VRT checkpoint: cannot tell pa_frames (conv_offset takes {c_in} channels)")
    kw["pa_frames"] = int(pa)
    dg_out = shape("stage1.pa_deform.conv_offset.6.weight")[0]
    kw["deformable_groups"] = dg_out // 27
    fc = shape("stage1.residual_group1.blocks.0.mlp.fc11.weight")[0]
    if fc != 2 * dim0:
        kw["mlp_ratio"] = fc / dim0
    if "stage1.residual_group1.blocks.0.attn.qkv_self.bias" not in sd:
        kw["qkv_bias"] = False

    cf = shape("conv_first.weight")[1]
    if cf % 9 == 1:
        kw["nonblind_denoising"] = True
        kw["in_chans"] = (cf - 1) // 9
    else:
        kw["in_chans"] = cf // 9
    kw["out_chans"] = shape("conv_last.weight")[0]
    if "upsample.0.weight" in sd:
        nf = shape("upsample.0.weight")[1]
        convs = [k for k in sd if k.startswith("upsample.") and k.endswith(".weight")]
        if shape("upsample.0.weight")[0] == 9 * nf:
            kw["upscale"] = 3
        else:
            kw["upscale"] = 2 ** (len(convs) - 1)
    else:
        kw["upscale"] = 1

    # the official presets: img_size (no effect on the forward pass)
    plain = kw["in_chans"] == kw["out_chans"] == 3 and not {"mul_attn_ratio", "mlp_ratio", "qkv_bias", "nonblind_denoising"} & set(kw)
    for cfg in OFFICIAL_CONFIGS.values():
        if plain and all(kw.get(k) == v for k, v in cfg.items() if k != "img_size"):
            kw["img_size"] = cfg["img_size"]
            break
    return "VRT", kw


# ----------------------------------------------------------------------------------------------------------
# the declared order


@dataclass(frozen=True)
class Rule:
    """One family's recognition: the keys that must all be present, and the reader of its kwargs.

    ``by_name``: the reader also claims files by their official name (edge-SR model ids), so it is asked
    even when the keys are absent.
    """

    family: str
    needs: tuple[str, ...]
    read: Callable[[Mapping[str, torch.Tensor], str | None], Found | None]
    by_name: bool = False


RULES: tuple[Rule, ...] = (
    Rule("basicvsr", ("spynet.basic_module.0.basic_module.0.weight", "backward_trunk.main.0.weight"), detect_basicvsr),
    Rule("edvr", ("pcd_align.cas_dcnpack.weight",), detect_edvr),  # both namings have this key
    Rule("rlsp", ("conv1.weight", "conv_out.weight"), detect_rlsp),
    Rule("rlsp", ("layer0/kernel", "layer0/bias"), detect_rlsp_released),  # RLSP as released: TensorFlow names
    Rule("rlsp", ("trunk.0.weight", "state_head.weight", "out_head.weight"), detect_rlsp_released),  # converted
    Rule("edgesr", (), detect_edgesr, by_name=True),
    Rule("vrt", ("conv_first.weight", "stage1.residual_group1.blocks.0.attn.qkv_mut.weight"), detect_vrt),
)


def detect(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(family, class name, kwargs) of the architecture a checkpoint belongs to; VsrkitError if none."""
    for rule in RULES:
        if not all(k in state_dict for k in rule.needs):
            continue
        if not rule.needs and not rule.by_name:
            continue
        try:
            found = rule.read(state_dict, filename)
        except ValueError as e:  # a model id in the file name that does not parse
            raise VsrkitError(f"{filename or 'checkpoint'}: {e}") from None
        if found is not None:
            return rule.family, found[0], found[1]
    keys = ", ".join(list(state_dict)[:3])
    raise VsrkitError(f"{filename or 'checkpoint'}: architecture not recognised from its keys ({keys}, ...)")


def convert(family: str, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's keys in vsrkit's names: EDVR has an older naming, the released RLSP TensorFlow's."""
    if family == "edvr":
        return convert_state_dict(state_dict)
    if family == "rlsp" and _tf_layers(state_dict):
        return convert_rlsp_released(state_dict)
    return dict(state_dict)
