"""Datasets: the layouts (REDS splits, Vimeo lists, clip folders, videos, images), aligned crops and
augmentations, LR made on the fly exactly as the whole degraded frame, decoding in DataLoader workers, and one-line
errors naming the file for missing, empty or malformed data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from golden import data_path
from media import write_png
from vsrkit.data.datasets import REDS4, REDSVAL4, TrainDataset, ValDataset, degraded_crop, list_clips
from vsrkit.data.degrade import degrade
from vsrkit.data.transforms import apply_augment, augment_pair
from vsrkit.errors import VsrkitError
from vsrkit.train.config import DataCfg
from vsrkit.train.distributed import TrainSampler


def _clip(folder, n, h=32, w=40, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_png(folder / f"{i:08d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_on_the_fly_crop_equals_crop_of_the_degraded_frame():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 96, 128, 3), dtype=np.uint8)
    for mode in ("bi", "bd"):
        full = degrade(gt, mode, 4)
        for y, x in ((0, 0), (5, 7), (24 - 6, 32 - 6), (10, 0)):
            lq, hr = degraded_crop(gt, y, x, 6, 4, mode)
            assert np.array_equal(lq, full[:, y:y + 6, x:x + 6]), (mode, y, x)
            assert np.array_equal(hr, gt[:, 4 * y:4 * y + 24, 4 * x:4 * x + 24])


def test_augmentations_stay_aligned():
    rng = np.random.default_rng(1)
    lq = rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    gt = lq.repeat(4, axis=1).repeat(4, axis=2)  # every LR pixel a 4x4 block: flips and rotations commute
    seen = set()
    for seed in range(40):
        a, b = augment_pair(lq, gt, np.random.default_rng(seed), hflip=True, rot=True, reverse=True)
        assert np.array_equal(a, b[:, ::4, ::4])
        seen.add(b.tobytes())
    assert len(seen) > 10  # of the 16: flips, rotations and reversal all happen
    flags = (False, False, False, True)
    assert np.array_equal(apply_augment(gt, flags), gt[::-1])


def test_reds_splits_and_layout(tmp_path):
    root = tmp_path / "REDS"
    for name in ("000", "001", "011", "015", "020", "240", "241", "246", "257", "250"):
        _clip(root / "train_sharp" / name, 3, 32, 32)
        _clip(root / "train_sharp_bicubic" / "X4" / name, 3, 8, 8)
    train = list_clips(DataCfg(kind="reds", root=str(root)))
    assert [c.name for c in train] == ["001", "250"]  # REDS4 and REDSval4 held out
    val = list_clips(DataCfg(kind="reds", root=str(root), split="val"))
    assert [c.name for c in val] == list(REDSVAL4) and all(c.lq is not None for c in val)
    assert [c.name for c in list_clips(DataCfg(kind="reds", root=str(root), split="test"))] == list(REDS4)
    cfg = DataCfg(kind="reds", root=str(root), num_frame=2, gt_size=16, hflip=True, rot=True)
    ds = TrainDataset(cfg)
    s = ds[(0, 3)]
    assert s["lq"].shape == (2, 3, 4, 4) and s["gt"].shape == (2, 3, 16, 16)
    # the seed decides the sample: the same (clip, seed) in another dataset object, after other draws, gives the
    # same frames and crop (no global random state), and other seeds give other samples
    ds[(1, 6)]
    again = TrainDataset(cfg)[(1, 5)]
    first = ds[(1, 5)]
    assert torch.equal(again["gt"], first["gt"]) and torch.equal(again["lq"], first["lq"])
    assert len({ds[(1, seed)]["gt"].numpy().tobytes() for seed in range(8)}) > 1


def test_vimeo_lists(tmp_path):
    root = tmp_path / "vimeo"
    for e in ("00001/0001", "00001/0002"):
        _clip(root / "sequences" / e, 7, 16, 16)
    (root / "sep_trainlist.txt").write_text("00001/0001\n00001/0002\n")
    (root / "sep_testlist.txt").write_text("00001/0002\n")
    cfg = DataCfg(kind="vimeo", root=str(root), num_frame=-1, gt_size=8, mirror=True)
    ds = TrainDataset(cfg)
    assert len(ds) == 2 and ds[(0, 0)]["gt"].shape == (14, 3, 8, 8)  # 7 frames and the 7 reversed
    assert [c.name for c in list_clips(DataCfg(kind="vimeo", root=str(root), split="test"))] == ["00001/0002"]
    (root / "sep_testlist.txt").write_text("00001/0003\n")
    with pytest.raises(VsrkitError, match=r"sep_testlist.txt: line 1: .*00001/0003 not found"):
        list_clips(DataCfg(kind="vimeo", root=str(root), split="test"))


def test_missing_empty_malformed_are_one_line(tmp_path):
    def err(cfg):
        with pytest.raises(VsrkitError) as e:
            TrainDataset(cfg)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "folder not found" in err(DataCfg(kind="clips", root=str(tmp_path / "none")))
    (tmp_path / "empty").mkdir()
    assert "no clip folders" in err(DataCfg(kind="clips", root=str(tmp_path / "empty")))
    (tmp_path / "empty" / "a").mkdir()
    assert f"{tmp_path / 'empty' / 'a'}: no frames" in err(DataCfg(kind="clips", root=str(tmp_path / "empty")))
    _clip(tmp_path / "gt" / "a", 3)
    _clip(tmp_path / "lq" / "a", 2, 8, 10)
    assert "2 frames, but the ground truth" in err(DataCfg(kind="clips", root=str(tmp_path / "gt"),
                                                           lq_root=str(tmp_path / "lq")))
    assert "fewer than num_frame 5" in err(DataCfg(kind="clips", root=str(tmp_path / "gt"), num_frame=5))
    (tmp_path / "vm").mkdir()
    assert "vm/sequences not found" in err(DataCfg(kind="vimeo", root=str(tmp_path / "vm")))
    (tmp_path / "vm" / "sequences").mkdir()
    assert "sep_trainlist.txt not found" in err(DataCfg(kind="vimeo", root=str(tmp_path / "vm")))
    (tmp_path / "vids").mkdir()
    (tmp_path / "vids" / "broken.mp4").write_bytes(b"not a video")
    assert "broken.mp4: not a readable video" in err(DataCfg(kind="videos", root=str(tmp_path / "vids")))
    # a damaged frame is found while decoding, in a DataLoader worker: still one line naming the file
    bad = tmp_path / "gt" / "a" / "00000001.png"
    bad.write_bytes(b"garbage")
    from vsrkit.train.loop import _batches

    ds = TrainDataset(DataCfg(kind="clips", root=str(tmp_path / "gt"), num_frame=3))
    loader = DataLoader(ds, batch_size=1, sampler=TrainSampler(len(ds), 0), num_workers=1)
    with pytest.raises(VsrkitError) as e:
        next(_batches(loader))
    assert "\n" not in str(e.value) and str(bad) in str(e.value) and "cannot read image" in str(e.value)


def test_real_clips_decode_in_workers_and_validation_clips():
    clips = data_path("clips")
    cfg = DataCfg(kind="videos", root=str(clips), include=["carphone_pristine.mp4"], num_frame=3, gt_size=64,
                  degradation="bd", channels="y")
    ds = TrainDataset(cfg)
    loader = DataLoader(ds, batch_size=2, sampler=TrainSampler(len(ds), 0), num_workers=1)
    batch = next(iter(loader))
    assert batch["lq"].shape == (2, 3, 1, 16, 16) and batch["gt"].shape == (2, 3, 1, 64, 64)
    same = ds[TrainSampler(len(ds), 0).__iter__().__next__()]  # the worker made the same first sample
    assert torch.equal(same["gt"], batch["gt"][0])
    val = ValDataset(DataCfg(kind="videos", root=str(clips), include=["carphone_pristine.mp4"], max_frames=2))
    item = val[0]
    assert item["lq"].shape == (2, 3, 36, 44) and item["gt"].shape == (2, 3, 144, 176)


def test_sampler_shards_the_global_stream():
    one = TrainSampler(6, seed=3, rank=0, world_size=1)
    r0, r1 = TrainSampler(6, 3, 0, 2), TrainSampler(6, 3, 1, 2)
    first = [next(it) for it in [iter(one)] for _ in range(16)]
    a = [x for it in [iter(r0)] for x in [next(it) for _ in range(8)]]
    b = [x for it in [iter(r1)] for x in [next(it) for _ in range(8)]]
    assert [v for pair in zip(a, b) for v in pair] == first  # rank r takes positions r, r + 2, ...
    resumed = iter(TrainSampler(6, 3, 1, 2, start=10))
    assert [next(resumed) for _ in range(3)] == b[5:8]
