"""The TensorFlow tensor-bundle reader: the released RLSP checkpoints, checksums, bad files."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from golden import load_case
from vsrkit.errors import VsrkitError
from vsrkit.hub import tfbundle
from vsrkit.hub.tfbundle import crc32c, is_tf_checkpoint, read_index, read_tensors

CKPTS = ["ckpt_rlsp_64", "ckpt_rslp_48"]


@pytest.fixture(scope="module")
def case():
    meta, _io, d = load_case("rlsp_tf_official")
    return meta, d / "checkpoints"


def _copy(d, name, tmp_path):
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(d / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
        os.chmod(tmp_path / f"{name}{suffix}", 0o644)
    return tmp_path / name


def test_crc32c():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    data = bytes(range(256)) * 97 + b"tail"  # long enough for the parallel lanes, with a remainder
    assert crc32c(data) == tfbundle._crc_raw_scalar(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    assert crc32c(b"") == 0


@pytest.mark.parametrize("name", CKPTS)
def test_golden_variables_and_shapes(case, name):
    meta, d = case
    n_shards, entries = read_index(d / f"{name}.index")
    assert n_shards == 1
    expected = [(k, list(s)) for k, s in meta["checkpoint_variables"][name]]
    assert [(k, list(e.shape)) for k, e in entries.items()] == expected
    tensors = read_tensors(d / f"{name}.index")  # every tensor, each one's CRC-32C checked
    assert [(k, list(t.shape)) for k, t in tensors.items()] == expected
    assert all(t.dtype == torch.float32 for t in tensors.values())
    assert {k for k in tensors if "Adam" in k}, "the optimiser slots are in the file"
    # the prefix and the data shard name the same checkpoint
    k = tensors["layer0/kernel"]
    assert torch.equal(read_tensors(d / name, ["layer0/kernel"])["layer0/kernel"], k)
    assert torch.equal(read_tensors(d / f"{name}.data-00000-of-00001", ["layer0/kernel"])["layer0/kernel"], k)


def test_is_tf_checkpoint(case, tmp_path):
    _meta, d = case
    assert is_tf_checkpoint(d / "ckpt_rlsp_64.index")
    assert is_tf_checkpoint(d / "ckpt_rlsp_64")
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    assert not is_tf_checkpoint(tmp_path / "w.pth")
    assert not is_tf_checkpoint(tmp_path / "missing.index")


def test_truncated_data_is_one_line_error(case, tmp_path):
    prefix = _copy(case[1], "ckpt_rlsp_64", tmp_path)
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(VsrkitError) as e:
        read_tensors(prefix.with_name(prefix.name + ".index"))
    msg = str(e.value)
    assert "\n" not in msg and str(data) in msg and "TensorFlow checkpoint" in msg and "truncated" in msg


def test_corrupt_data_fails_its_checksum(case, tmp_path):
    prefix = _copy(case[1], "ckpt_rlsp_64", tmp_path)
    _, entries = read_index(prefix)
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[entries["layer3/kernel"].offset + 5] ^= 0x40
    data.write_bytes(bytes(raw))
    with pytest.raises(VsrkitError, match="checksum mismatch in tensor 'layer3/kernel'"):
        read_tensors(prefix, ["layer3/kernel"])
    read_tensors(prefix, ["layer3/kernel"], verify=False)  # the damage is only seen by the checksum
    read_tensors(prefix, ["layer2/kernel"])  # the other tensors are fine


def test_missing_data_shard(case, tmp_path):
    prefix = _copy(case[1], "ckpt_rslp_48", tmp_path)
    prefix.with_name(prefix.name + ".data-00000-of-00001").unlink()
    with pytest.raises(VsrkitError, match=r"cannot read .*data-00000-of-00001 \(TensorFlow checkpoint"):
        read_tensors(prefix)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_bad_index_is_one_line_error(case, tmp_path, damage):
    prefix = _copy(case[1], "ckpt_rlsp_64", tmp_path)
    index = prefix.with_name(prefix.name + ".index")
    raw = bytearray(index.read_bytes())
    if damage == "truncate":
        raw = raw[:700]
    elif damage == "garbage":
        raw = bytearray(b"not a checkpoint at all" * 10)
    else:
        raw[100] ^= 0x01  # inside the data block: caught by the block checksum
    index.write_bytes(bytes(raw))
    with pytest.raises(VsrkitError) as e:
        read_index(index)
    msg = str(e.value)
    assert "\n" not in msg and str(index) in msg and "not a valid TensorFlow checkpoint (tensor bundle) index" in msg


def test_index_block_checksum(case, tmp_path):
    """A changed letter in a variable name still parses; only the block's CRC-32C tells."""
    prefix = _copy(case[1], "ckpt_rlsp_64", tmp_path)
    index = prefix.with_name(prefix.name + ".index")
    raw = bytearray(index.read_bytes())
    at = raw.index(b"layer0/bias")
    raw[at + 1] ^= 0x01  # "layer0" -> "l`yer0"
    index.write_bytes(bytes(raw))
    with pytest.raises(VsrkitError, match="block checksum mismatch"):
        read_index(index)
