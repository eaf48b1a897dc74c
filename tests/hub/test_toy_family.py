"""A model family declared in this one file, registered by one line, is usable everywhere a built-in one is: by
name (with a pretrained release that is downloaded and checked), by recognition from its weights file (in its own
key names or another project's), through ``vsrkit.upscale`` on real frames, ONNX export and ``vsrkit train`` with
its training defaults. No other file knows about it."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

import vsrkit
from golden import data_path
from vsrkit.cli.main import main
from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import load_state_dict, sha256_file
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource
from vsrkit.models.registry import family_of, get_entry, register, unregister
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

# ----------------------------------------------------------------------------------------------------------
# the network


class ToyVSR(nn.Module):
    """A frame model: a 3x3 convolution to ``num_feat`` features and one to ``3 * scale**2`` channels, pixel-shuffled
    onto a nearest-neighbour upscale of the frame."""

    def __init__(self, num_feat: int = 4, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, num_feat, 3, padding=1)
        self.tail = nn.Conv2d(num_feat, 3 * scale * scale, 3, padding=1)
        self.spec = ModelSpec(scale=scale, temporal=Temporal("frame"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up + F.pixel_shuffle(self.tail(F.relu(self.head(x))), self.scale)


# ----------------------------------------------------------------------------------------------------------
# the family: names, recognition, training defaults

# "another project" names the two convolutions ``toy.conv_in`` and ``toy.conv_out``
_THEIRS = {"toy.conv_in.": "head.", "toy.conv_out.": "tail."}
BY_FILE = Protocol(end_padding="reflection")  # what a checkpoint by file gets (the family's default)
RELEASED = Protocol(end_padding="reflection_circle")  # what the released model was "evaluated" with


def convert(sd):
    """Another project's names -> ToyVSR's."""
    out = {}
    for k, v in sd.items():
        prefix = next((p for p in _THEIRS if k.startswith(p)), None)
        out[_THEIRS[prefix] + k[len(prefix):] if prefix else k] = v
    return out


def read(sd, filename):
    """``("ToyVSR", kwargs)``: ``num_feat`` from the first convolution, ``scale`` from the last one's outputs."""
    sd = convert(sd)
    if set(sd) != {"head.weight", "head.bias", "tail.weight", "tail.bias"}:
        return None
    out = sd["tail.weight"].shape[0]
    scale = math.isqrt(out // 3)
    if out % 3 or scale * scale * 3 != out:
        raise VsrkitError(f"toy checkpoint: tail gives {out} channels, not 3 * scale**2")
    return "ToyVSR", {"num_feat": int(sd["head.weight"].shape[0]), "scale": scale}


def make_family(release: WeightsSource | None) -> Family:
    return Family(
        "toy",
        (
            ModelEntry("toy", "ToyVSR", {}, summary="toy x2, 4 features, random weights"),
            ModelEntry("toy-x2-demo", "ToyVSR", {"num_feat": 8, "scale": 2}, release,
                       summary="toy x2, 8 features, released", protocol=RELEASED,
                       losses_db={"bf16": 0.5, "ov_bf16": 0.02, "ov_int8": 0.5}),  # bf16 over budget: auto stays fp32
        ),
        rules=(Rule(("head.weight", "tail.weight"), read), Rule(("toy.conv_in.weight",), read)),
        convert=convert,
        default_protocol=lambda arch, kwargs: BY_FILE,
        training={"optim": {"lr_mul": {"tail": 0.5}}},
        aliases={"toy-demo": "toy-x2-demo"},
    )


FAMILY: Family | None = None  # set with its release by the ``toy`` fixture


def released_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """The toy release: trained-looking weights of ToyVSR(8, 2), in the other project's names."""
    torch.manual_seed(seed)
    net = ToyVSR(num_feat=8, scale=2)
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    return {("toy.conv_in." if k.startswith("head.") else "toy.conv_out.") + k.split(".", 1)[1]: v.contiguous()
            for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy family registered by its one line, with its release served from a local folder (file:// URL)."""
    global FAMILY
    upstream = tmp_path_factory.mktemp("upstream")
    save_file(released_weights(), str(upstream / "toy_x2_demo.safetensors"))
    release = WeightsSource(filename="toy_x2_demo.safetensors", sha256=sha256_file(upstream / "toy_x2_demo.safetensors"),
                            url=(upstream / "toy_x2_demo.safetensors").as_uri(), licence="test only")
    FAMILY = make_family(release)
    register("toy", __name__, names=("toy",))
    yield upstream
    unregister("toy")
    FAMILY = None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VSRKIT_OFFLINE", raising=False)
    return tmp_path / "cache"


def _frames(tmp_path: Path, n: int = 3) -> Path:
    src = data_path("frames", "reds_demo_000_lr")
    folder = tmp_path / "lr"
    folder.mkdir()
    for f in sorted(src.glob("*.png"))[:n]:
        shutil.copy(f, folder / f.name)
    return folder


def _png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float()


def _expected(model: nn.Module, frame: Path) -> torch.Tensor:
    """The model applied to one frame directly, as 8-bit levels."""
    with torch.no_grad():
        y = model(_png(frame)[None] / 255)[0]
    return (y.clamp(0, 1) * 255).round()


# ----------------------------------------------------------------------------------------------------------
# the proof


def test_by_name_with_its_release_downloaded_checked_and_converted(toy, cache):
    assert family_of("toy-x2-demo") == "toy" and get_entry("toy-demo")[1].name == "toy-x2-demo"
    bare = vsrkit.load_model("toy")
    assert type(bare).__name__ == "ToyVSR" and bare.spec.name == "toy" and bare.head.out_channels == 4
    assert bare.spec.protocol == BY_FILE  # no protocol of its own: the family's default
    model = vsrkit.load_model("toy-demo", progress=False)
    assert model.spec.name == "toy-x2-demo" and model.spec.protocol == RELEASED and model.spec.scale == 2
    assert (cache / "toy_x2_demo.safetensors").is_file()  # fetched from its URL and checked against its sha256
    want = convert(released_weights())
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())
    # its measured precision losses reach the spec (its own weights only), and the budgets act on them
    assert (model.spec.bf16_loss_db, model.spec.ov_bf16_loss_db, model.spec.int8_loss_db) == (0.5, 0.02, 0.5)
    assert bare.spec.bf16_loss_db is None and bare.spec.int8_loss_db is None
    other = vsrkit.load_model("toy-demo", weights=cache / "toy_x2_demo.safetensors")
    assert other.spec.bf16_loss_db is None and other.spec.int8_loss_db is None
    from vsrkit.export.openvino import choose_precision

    with pytest.raises(VsrkitError, match="int8 costs 0.50 dB"):
        choose_precision("int8", model.spec, "toy-x2-demo", False, None)
    with pytest.raises(VsrkitError, match="unknown model 'toy-x3'"):
        vsrkit.load_model("toy-x3")
    # `vsrkit models` lists it, and describes it
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0 and any(line.split()[:3] == ["toy-x2-demo", "x2", "yes"] for line in r.output.splitlines())
    assert "toy-demo = toy-x2-demo" in r.output.replace("\n", " ")
    r = CliRunner().invoke(main, ["models", "toy-demo"])
    assert r.exit_code == 0 and "family toy, frame, x2, RGB" in r.output and "end padding reflection_circle" in r.output


def test_recognised_from_its_weights_file(toy, tmp_path):
    torch.manual_seed(1)
    net = ToyVSR(num_feat=6, scale=3)
    torch.save({"params": net.state_dict()}, tmp_path / "mine.pth")  # its own names, in a BasicSR-style container
    theirs = {("toy.conv_in." if k.startswith("head.") else "toy.conv_out.") + k.split(".", 1)[1]: v
              for k, v in net.state_dict().items()}
    save_file(theirs, str(tmp_path / "theirs.safetensors"))  # another project's names
    for name in ("mine.pth", "theirs.safetensors"):
        model = vsrkit.load_model(weights=str(tmp_path / name))
        assert type(model).__name__ == "ToyVSR" and (model.head.out_channels, model.scale) == (6, 3)
        assert model.spec.name == "ToyVSR" and model.spec.protocol == BY_FILE
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in model.state_dict().items())
    bad = {k: v for k, v in net.state_dict().items()} | {"tail.weight": torch.zeros(10, 6, 3, 3)}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(VsrkitError, match="toy checkpoint: tail gives 10 channels"):
        vsrkit.load_model(weights=str(tmp_path / "bad.pth"))


def test_upscale_and_onnx_export_of_real_frames(toy, cache, tmp_path):
    pytest.importorskip("onnxruntime")
    from vsrkit.export.onnx import OnnxModel, export_onnx

    frames = _frames(tmp_path)
    out = vsrkit.upscale(str(frames), str(tmp_path / "sr"), model="toy-x2-demo", device="cpu", progress=False,
                         say=lambda _m: None)
    model = vsrkit.load_model("toy-x2-demo", progress=False)
    got = sorted(Path(out).glob("*.png"))
    assert [p.name for p in got] == [p.name for p in sorted(frames.glob("*.png"))]
    for lr, sr in zip(sorted(frames.glob("*.png")), got):
        want = _expected(model, lr)
        assert _png(sr).shape == want.shape == (3, 360, 640)
        assert (_png(sr) - want).abs().max() <= 1  # 8-bit rounding of the same computation

    meta = export_onnx(model, tmp_path / "toy.onnx")
    assert meta["model"] == "toy-x2-demo" and meta["max_abs_error"] <= 1e-4
    onnx_model = OnnxModel(tmp_path / "toy.onnx")
    assert onnx_model.spec.name == "toy-x2-demo (onnx)" and onnx_model.spec.scale == 2
    out = vsrkit.upscale(str(frames), str(tmp_path / "sr_onnx"), weights=str(tmp_path / "toy.onnx"),
                         backend="onnxruntime", device="cpu", progress=False, say=lambda _m: None)
    for a, b in zip(got, sorted(Path(out).glob("*.png"))):
        assert (_png(a) - _png(b)).abs().max() <= 1


def test_train_config_with_the_family_training_defaults(toy, tmp_path):
    from vsrkit.train.config import load_config
    from vsrkit.train.loop import Trainer

    cfg_file = tmp_path / "toy.yml"
    cfg_file.write_text(json.dumps({  # JSON is YAML
        "name": "toy", "output": str(tmp_path / "run"),
        "model": {"arch": "ToyVSR", "kwargs": {"num_feat": 8, "scale": 2}},
        "data": {"kind": "images", "root": str(data_path("images", "Set5")), "scale": 2, "gt_size": 32},
        "train": {"total_iter": 2, "batch_size": 2, "num_workers": 0, "device": "cpu", "progress": False,
                  "save_every": 2},
        "optim": {"lr": 1e-3}, "loss": {"type": "l1"},
    }))
    cfg = load_config(cfg_file)
    assert cfg.optim.lr_mul == {"tail": 0.5}  # the family's training default, under the config
    groups = Trainer(cfg).optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 5e-4] and groups[1]["names"] == ["tail.weight", "tail.bias"]

    r = CliRunner().invoke(main, ["train", str(cfg_file)])
    assert r.exit_code == 0, r.output
    weights = tmp_path / "run" / "weights" / "net_g_00000002.safetensors"
    model = vsrkit.load_model(weights=str(weights))  # the family and arguments saved with the weights
    assert type(model).__name__ == "ToyVSR" and model.spec.name == "ToyVSR" and model.head.out_channels == 8
    trained = load_state_dict(weights)
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    fresh = Trainer(cfg).model.state_dict()  # the same seed: the weights before training
    assert any(not torch.equal(v, fresh[k]) for k, v in trained.items())


def test_a_lookup_imports_only_the_family_it_needs():
    code = (
        "import sys, vsrkit, vsrkit.cli.main, vsrkit.hub.loader\n"
        "fams = lambda: sorted(m for m in sys.modules if m in {'vsrkit.models.' + f for f in __import__("
        "'vsrkit.models.registry', fromlist=['x']).registered()})\n"
        "print(fams()); vsrkit.load_model('espcn-x2'); print(fams())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "['vsrkit.models.edgesr']"]
