"""TensorFlow checkpoints in the hub: recognised by load_model, refused clearly, named releases converted once."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

import vsrkit
from golden import case_dir
from vsrkit.errors import VsrkitError
from vsrkit.models import rlsp
from vsrkit.hub.checkpoint import load_state_dict
from vsrkit.models.family import RemoteFile

DATA = ".data-00000-of-00001"


@pytest.fixture(scope="module")
def ckpts():
    return case_dir("rlsp_tf_official") / "checkpoints"


@pytest.mark.parametrize("name,filters", [("ckpt_rlsp_64", 64), ("ckpt_rslp_48", 48)])
def test_load_model_recognises_a_tf_checkpoint(ckpts, name, filters):
    for path in (ckpts / f"{name}.index", ckpts / f"{name}{DATA}"):
        model = vsrkit.load_model(weights=str(path))
        assert type(model).__name__ == "RLSPReleased" and model.spec.name == "RLSPReleased"
        assert (model.layers, model.filters, model.state_dim, model.factor) == (7, filters, filters, 4)
    sd = load_state_dict(ckpts / f"{name}.index")  # the torch.load path: TensorFlow names, no optimiser slots
    assert "layer0/kernel" in sd and not any("Adam" in k or "power" in k for k in sd)
    assert torch.equal(model.out_head.bias, sd["layer7/bias"])


def test_tf_files_refused_in_one_line_without_pytorch_advice(ckpts, tmp_path):
    # the graph alone, a data shard without its index, junk: one line each, never "weights_only=False"
    shutil.copy(ckpts / "ckpt_rslp_48.meta", tmp_path / "ckpt_rslp_48.meta")
    shutil.copy(ckpts / f"ckpt_rslp_48{DATA}", tmp_path / f"lone{DATA}")
    (tmp_path / "junk.pth").write_bytes(b"\x08\x01" * 100)
    cases = {
        "ckpt_rslp_48.meta": "TensorFlow graph \\(.meta\\) holds no weights",
        f"lone{DATA}": "cannot read .*lone.index",
        "junk.pth": "not a PyTorch \\(zip or pickle\\), safetensors or TensorFlow checkpoint",
    }
    for fname, pattern in cases.items():
        with pytest.raises(VsrkitError, match=pattern) as e:
            vsrkit.load_model(weights=str(tmp_path / fname))
        assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    # beside its .index, a .meta is pointed at the index
    with pytest.raises(VsrkitError, match="pass .*ckpt_rslp_48.index"):
        vsrkit.load_model(weights=str(ckpts / "ckpt_rslp_48.meta"))
    # the PyTorch port's RLSP is another variant: the file does not fit it, and the message says what it is
    with pytest.raises(VsrkitError, match="does not fit model 'rlsp-7-64'.*RLSPReleased checkpoint"):
        vsrkit.load_model("rlsp-7-64", weights=str(ckpts / "ckpt_rlsp_64.index"))


def _local_release(monkeypatch, tmp_path, ckpts, sha_index=None):
    """rlsp-7-64-released with its files served from a local folder (file:// URLs), cache in tmp_path."""
    src_dir = tmp_path / "upstream"
    src_dir.mkdir()
    real = rlsp.rlsp_released_weights(64)
    parts = []
    for part in real.parts:
        shutil.copy(ckpts / part.name, src_dir / part.name)
        sha = part.sha256 if sha_index is None or not part.name.endswith(".index") else sha_index
        parts.append(RemoteFile(part.name, sha, (src_dir / part.name).as_uri()))
    weights = dataclasses.replace(real, parts=tuple(parts))
    table = tuple(dataclasses.replace(e, weights=weights) if e.name == "rlsp-7-64-released" else e
                  for e in rlsp.FAMILY.entries)
    monkeypatch.setattr(rlsp, "FAMILY", dataclasses.replace(rlsp.FAMILY, entries=table))
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VSRKIT_OFFLINE", raising=False)
    return src_dir


def test_named_release_is_downloaded_checked_and_converted_once(ckpts, tmp_path, monkeypatch):
    src_dir = _local_release(monkeypatch, tmp_path, ckpts)
    model = vsrkit.load_model("rlsp-7-64-released", progress=False)
    assert model.spec.name == "rlsp-7-64-released" and model.spec.protocol.end_padding == "replicate"
    converted = tmp_path / "cache" / "rlsp-7-64-released.safetensors"
    assert converted.is_file()
    from safetensors.torch import load_file

    assert set(load_file(str(converted))) == set(model.state_dict())
    reference = vsrkit.load_model(weights=str(ckpts / "ckpt_rlsp_64.index"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    shutil.rmtree(src_dir)  # converted once: the next load needs neither the network nor the TF files
    shutil.rmtree(tmp_path / "cache" / "rlsp-7-64-released")
    again = vsrkit.load_model("rlsp-7-64-released", progress=False)
    assert torch.equal(again.trunk[0].weight, model.trunk[0].weight)


def test_named_release_with_a_wrong_hash_is_refused(ckpts, tmp_path, monkeypatch):
    _local_release(monkeypatch, tmp_path, ckpts, sha_index="0" * 64)
    with pytest.raises(VsrkitError, match="corrupt: its sha256 is not 0000"):
        vsrkit.load_model("rlsp-7-64-released", progress=False)
    assert not (tmp_path / "cache" / "rlsp-7-64-released.safetensors").exists()


def test_release_without_a_hash_is_pinned(ckpts, tmp_path, monkeypatch):
    _local_release(monkeypatch, tmp_path, ckpts, sha_index="")
    vsrkit.load_model("rlsp-7-64-released", progress=False)
    assert (tmp_path / "cache" / "rlsp-7-64-released" / "ckpt_rlsp_64.index.sha256").is_file()


def test_offline_without_cache_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VSRKIT_OFFLINE", "1")
    with pytest.raises(VsrkitError, match="no weights for rlsp-7-48-released: downloads are off .*copy the file ckpt_rslp_48.index from https://.* \\(sha256 6f440c5a.*\\) to .*cache.*ckpt_rslp_48.index, or pass --weights FILE"):
        vsrkit.load_model("rlsp-7-48-released", progress=False)
