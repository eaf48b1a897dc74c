"""vsrkit.video: streaming reader/writer, image folders, native layouts, timing, audio copy, damage."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from golden import data_path
from vsrkit.errors import VsrkitError
from vsrkit.io import Frame, VideoInfo, VideoReader, VideoWriter, is_image_folder_output, probe


# ----------------------------------------------------------------------------------------- helpers
def _rng_image(h: int, w: int, c: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    hi = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, hi + 1, (h, w, c), dtype=np.int64).astype(dtype)


def _smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour picture (lossy codecs keep it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), np.full_like(x, 60 + 40 * seed)], -1)
    return img.astype(np.uint8)


def _write_png(path: Path, a: np.ndarray, fmt: str, png_fmt: str) -> None:
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = a.shape[1], a.shape[0], png_fmt
    fr = av.VideoFrame.from_ndarray(a, format=fmt)
    if fr.format.name != png_fmt:
        fr = fr.reformat(format=png_fmt)
    path.write_bytes(b"".join(bytes(p) for p in cc.encode(fr)))


def _encode_video(path: Path, frames: list[np.ndarray], *, codec: str, pix_fmt: str, in_fmt: str = "rgb24",
                  rate: int = 25, options: dict | None = None, container_options: dict | None = None) -> None:
    with av.open(str(path), "w", options=container_options or {}) as o:
        s = o.add_stream(codec, rate=rate)
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = pix_fmt
        if options:
            s.codec_context.options = options
        for i, a in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(a, format=in_fmt)
            fr.pts = i
            for p in s.encode(fr):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)


def _packets(path: Path) -> dict[str, list]:
    """codec type -> [(pts seconds, duration seconds)] of every non-empty packet (ffprobe-like count)."""
    out: dict[str, list] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size == 0:
                continue
            t = p.pts * p.time_base if p.pts is not None else None
            d = (p.duration or 0) * p.time_base
            out.setdefault(p.stream.type, []).append((t, d))
    return out


def _read_all(path) -> tuple[VideoInfo, list[Frame]]:
    with VideoReader(path) as r:
        return r.info, list(r)


# ----------------------------------------------------------------------------------------- image folders
def test_image_folder_natural_order_and_exact_roundtrip(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    imgs = {n: _rng_image(9, 7, 3, seed=n) for n in (1, 2, 10)}
    for n, a in imgs.items():
        _write_png(src / f"{n}.png", a, "rgb24", "rgb24")
    (src / "notes.txt").write_text("not an image")
    info, frames = _read_all(src)
    assert info.is_image_sequence and info.num_frames == 3 and (info.width, info.height) == (7, 9)
    assert (info.channels, info.bit_depth, info.fps, info.has_audio) == (3, 8, None, False)
    assert [f.index for f in frames] == [0, 1, 2] and all(f.pts is None for f in frames)
    for f, n in zip(frames, (1, 2, 10)):  # 2.png before 10.png
        assert f.image.dtype == np.uint8 and np.array_equal(f.image, imgs[n])


@pytest.mark.parametrize("c,dtype", [(1, np.uint8), (1, np.uint16), (3, np.uint16), (4, np.uint8), (4, np.uint16)])
def test_png_folder_keeps_grey_alpha_16bit(tmp_path: Path, c: int, dtype) -> None:
    out = tmp_path / "frames"
    imgs = [_rng_image(5, 6, c, dtype, seed=i) for i in range(3)]
    with VideoWriter(out, width=6, height=5, channels=c, bit_depth=16 if dtype == np.uint16 else 8) as w:
        for a in imgs:
            w.write(a)
    assert sorted(p.name for p in out.iterdir()) == ["00000000.png", "00000001.png", "00000002.png"]
    info, frames = _read_all(out)
    assert (info.channels, info.bit_depth) == (c, 16 if dtype == np.uint16 else 8)
    for f, a in zip(frames, imgs):
        assert f.image.dtype == dtype and f.image.shape == (5, 6, c)
        assert np.array_equal(f.image, a)


def test_image_folder_other_formats(tmp_path: Path) -> None:
    a = _smooth_image(16, 24)
    for name, codec, pix in [("a.bmp", "bmp", "bgr24"), ("b.tif", "tiff", "rgb24"), ("c.jpg", "mjpeg", "yuvj444p")]:
        d = tmp_path / name.split(".")[1]
        d.mkdir()
        cc = av.CodecContext.create(codec, "w")
        cc.width, cc.height, cc.pix_fmt = 24, 16, pix
        if codec == "mjpeg":
            cc.time_base = Fraction(1, 25)
            cc.options = {"q": "2"}
        fr = av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format=pix)
        (d / name).write_bytes(b"".join(bytes(p) for p in cc.encode(fr)))
        info, frames = _read_all(d)
        assert (info.channels, info.bit_depth, len(frames)) == (3, 8, 1), name
        err = np.abs(frames[0].image.astype(int) - a).max()
        assert err <= (12 if codec == "mjpeg" else 0), (name, err)


def test_image_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(VsrkitError, match="no images"):
        VideoReader(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _write_png(mixed / "1.png", _rng_image(4, 4, 3), "rgb24", "rgb24")
    _write_png(mixed / "2.png", _rng_image(5, 4, 3), "rgb24", "rgb24")
    with VideoReader(mixed) as r, pytest.raises(VsrkitError, match=r"2\.png.*4x5.*frame 1"):
        list(r)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "0.png").write_bytes(b"this is not a png")
    with pytest.raises(VsrkitError, match=r"0\.png"):
        VideoReader(bad)


# ----------------------------------------------------------------------------------------- native layouts
def test_grey_alpha_and_10bit_videos(tmp_path: Path) -> None:
    grey = [np.full((16, 16), 30 * i, np.uint8) for i in range(3)]
    _encode_video(tmp_path / "g.mkv", grey, codec="ffv1", pix_fmt="gray", in_fmt="gray")
    info, frames = _read_all(tmp_path / "g.mkv")
    assert (info.channels, info.bit_depth) == (1, 8)
    assert all(np.array_equal(f.image[:, :, 0], g) for f, g in zip(frames, grey))

    rgba = [_rng_image(16, 16, 4, seed=i) for i in range(3)]
    _encode_video(tmp_path / "a.mkv", rgba, codec="ffv1", pix_fmt="bgra", in_fmt="rgba")
    info, frames = _read_all(tmp_path / "a.mkv")
    assert (info.channels, info.bit_depth) == (4, 8)
    assert all(np.array_equal(f.image, a) for f, a in zip(frames, rgba))

    g16 = [_rng_image(16, 16, 1, np.uint16, seed=i)[:, :, 0] for i in range(2)]
    _encode_video(tmp_path / "g16.mkv", g16, codec="ffv1", pix_fmt="gray16le", in_fmt="gray16le")
    info, frames = _read_all(tmp_path / "g16.mkv")
    assert (info.channels, info.bit_depth) == (1, 16)
    assert all(f.image.dtype == np.uint16 and np.array_equal(f.image[:, :, 0], a) for f, a in zip(frames, g16))

    white = [np.full((16, 16, 3), 255, np.uint8)] * 2  # 10-bit yuv -> uint16 scaled to the full range
    _encode_video(tmp_path / "y10.mkv", white, codec="ffv1", pix_fmt="yuv420p10le")
    info, frames = _read_all(tmp_path / "y10.mkv")
    assert (info.channels, info.bit_depth) == (3, 16)
    assert frames[0].image.dtype == np.uint16 and frames[0].image.min() > 65000


# ----------------------------------------------------------------------------------------- real clips
@pytest.mark.parametrize("name", ["bikes.mp4", "Megamind.avi", "carphone_pristine.mp4", "tree.avi"])
def test_no_frame_lost_and_pts_increase(name: str) -> None:
    path = data_path("clips", name)
    n_packets = len(_packets(path)["video"])
    info = probe(path)
    assert info.num_frames == n_packets and not info.is_image_sequence
    with VideoReader(path) as r:
        pts = [f.pts for f in r]
    assert len(pts) == n_packets  # the decoder's delayed frames are flushed at the end
    assert all(b > a for a, b in zip(pts, pts[1:]))


def test_megamind_out_of_order_pts_repaired() -> None:
    # MPEG-4 ASP in AVI: frames come out with B-frame pts swapped; they are sorted back
    with VideoReader(data_path("clips", "Megamind.avi")) as r:
        pts = [f.pts for f in r]
    assert pts == list(range(1, 271))


def test_vfr_pts_survive_mp4(tmp_path: Path) -> None:
    src = data_path("clips", "tree.avi")
    info = probe(src)
    out = tmp_path / "tree.mp4"
    times = []
    with VideoReader(src) as r, VideoWriter(out, width=80, height=60, source=info, preset="ultrafast") as w:
        for f in r:
            w.write(np.ascontiguousarray(f.image[::4, ::4]), f.pts)
            times.append(f.pts * info.time_base)
    assert len(set(np.diff([float(t) for t in times]).round(6))) > 1  # the source really is irregular
    oinfo, frames = _read_all(out)
    assert [f.pts * oinfo.time_base for f in frames] == times


def _copy_small(src: Path, out: Path, **kw) -> VideoInfo:
    info = probe(src)
    with VideoReader(src) as r, VideoWriter(out, width=info.width // 8, height=info.height // 8, source=info,
                                            preset="ultrafast", **kw) as w:
        for f in r:
            w.write(np.ascontiguousarray(f.image[::8, ::8]), f.pts)
    return info


def _assert_audio_same(src: Path, out: Path, frame_s: float, missing: int = 0) -> None:
    a, b = _packets(src)["audio"], _packets(out)["audio"]
    assert len(a) - missing <= len(b) <= len(a)
    end_a = float(max(t + d for t, d in a))
    end_b = float(max(t + d for t, d in b))
    assert abs(end_a - end_b) <= frame_s


def test_audio_copied_aac_mp4_and_mov(tmp_path: Path) -> None:
    src = data_path("clips", "bigbuckbunny.mp4")
    for ext in (".mp4", ".mov"):
        out = tmp_path / ("bbb" + ext)
        _copy_small(src, out)
        with av.open(str(out)) as c:
            assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        _assert_audio_same(src, out, 1 / 25)
        assert len(_packets(out)["video"]) == 132


def test_audio_copied_ac3(tmp_path: Path) -> None:
    src = data_path("clips", "Megamind.avi")
    _copy_small(src, tmp_path / "m.mkv")
    _assert_audio_same(src, tmp_path / "m.mkv", 1 / 24)
    _copy_small(src, tmp_path / "m.mp4")
    with av.open(str(tmp_path / "m.mp4")) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["ac3"]
    # the AVI's first AC-3 packet is a broken partial frame, which the mp4 muxer drops
    _assert_audio_same(src, tmp_path / "m.mp4", 1 / 24, missing=1)
    # the first video frame starts at 1/23.976 s: kept exactly in mp4 (no 1 ms edit-list rounding)
    oinfo, frames = _read_all(tmp_path / "m.mp4")
    assert frames[0].pts * oinfo.time_base == Fraction(125, 2997)


def _adpcm_avi(src: Path) -> None:
    """25 frames of 32x32 video and one second of ADPCM sound, which mp4 cannot hold (re-encoded to AAC)."""
    with av.open(str(src), "w") as o:
        v = o.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        a = o.add_stream("adpcm_ms", rate=8000)
        a.layout = "mono"
        for i in range(25):
            fr = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * i, np.uint8), format="rgb24")
            fr.pts = i
            for p in v.encode(fr):
                o.mux(p)
        res = av.AudioResampler(format="s16", layout="mono", rate=8000, frame_size=a.codec_context.frame_size)
        t = (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16)[None]
        af = av.AudioFrame.from_ndarray(t, format="s16", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        for rf in res.resample(af) + res.resample(None):
            for p in a.encode(rf):
                o.mux(p)
        for p in list(a.encode(None)) + list(v.encode(None)):
            o.mux(p)


def test_audio_reencoded_to_aac_when_container_cannot_hold_it(tmp_path: Path, caplog) -> None:
    src = tmp_path / "adpcm.avi"
    _adpcm_avi(src)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="vsrkit.io"):
        info = probe(src)
        with VideoReader(src) as r, VideoWriter(out, width=32, height=32, source=info, preset="ultrafast") as w:
            for f in r:
                w.write(f.image, f.pts)
    assert "re-encoding it to AAC" in caplog.text
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
    b = _packets(out)["audio"]
    assert abs(float(max(t + d for t, d in b)) - 1.0) < 0.1  # one second of sound


def test_packet_without_dts_does_not_end_the_transcoded_audio(tmp_path: Path, monkeypatch) -> None:
    """Only the demuxer's empty flush packet ends a stream: a packet that merely lacks a DTS (some demuxers
    give such packets mid-stream) is sound like any other, and must not flush the AAC encoder."""
    src = tmp_path / "adpcm.avi"
    _adpcm_avi(src)
    out = tmp_path / "out.mp4"
    info = probe(src)
    real = VideoWriter._setup_copies

    def setup_then_drop_some_dts(self, final):  # the audio is copied when the video's segments are joined
        real(self, final)
        packets = self._copy.packets

        def some_without_dts():
            for k, pk in enumerate(packets):
                if pk.size and pk.stream.type == "audio" and k % 3 == 1:
                    pk.dts = None
                yield pk

        self._copy.packets = some_without_dts()

    monkeypatch.setattr(VideoWriter, "_setup_copies", setup_then_drop_some_dts)
    with VideoReader(src) as r, VideoWriter(out, width=32, height=32, source=info, preset="ultrafast") as w:
        for f in r:
            w.write(f.image, f.pts)
    b = _packets(out)["audio"]
    assert abs(float(max(t + d for t, d in b)) - 1.0) < 0.1  # still one second of sound


# ----------------------------------------------------------------------------------------- writer details
def test_odd_size_is_padded_by_edge_repeat(tmp_path: Path, caplog) -> None:
    a = _smooth_image(25, 33)
    with caplog.at_level(logging.WARNING, logger="vsrkit.io"):
        with VideoWriter(tmp_path / "odd.mp4", width=33, height=25, crf=0) as w:
            for _ in range(2):
                w.write(a)
    assert "padded to 34x26" in caplog.text
    info, frames = _read_all(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.fps) == (34, 26, 25)
    img = frames[0].image.astype(int)
    err = np.abs(img[:25, :33] - a)  # crf 0: only yuv420p rounding and chroma subsampling
    assert err.mean() < 4 and err.max() <= 16
    assert np.abs(img[25, :33] - img[24, :33]).max() <= 8 and np.abs(img[:25, 33] - img[:25, 32]).max() <= 8
    with VideoWriter(tmp_path / "odd444.mkv", width=33, height=25, pix_fmt="yuv444p") as w:
        w.write(a)
    assert (probe(tmp_path / "odd444.mkv").width, probe(tmp_path / "odd444.mkv").height) == (33, 25)


def test_writer_grey_16bit_alpha_to_video(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "g.mp4", width=16, height=16, fps=Fraction(30000, 1001)) as w:
        w.write(np.full((16, 16, 1), 128, np.uint8))
        w.write(np.full((16, 16, 3), 128 * 257, np.uint16))
        w.write(np.full((16, 16, 4), 128, np.uint8))
    info, frames = _read_all(tmp_path / "g.mp4")
    assert info.fps == Fraction(30000, 1001) and len(frames) == 3
    assert all(abs(int(f.image.mean()) - 128) <= 2 for f in frames)


def test_writer_refuses_existing_and_input(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    with pytest.raises(VsrkitError, match="already exists"):
        VideoWriter(out, width=16, height=16)
    with VideoWriter(out, width=16, height=16, overwrite=True) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
    assert probe(out).num_frames == 1
    src = tmp_path / "in.mkv"
    _encode_video(src, [np.zeros((16, 16, 3), np.uint8)], codec="ffv1", pix_fmt="bgr0")
    link = tmp_path / "link.mkv"
    link.symlink_to(src)
    for target in (src, link):
        with pytest.raises(VsrkitError, match="is the input"):
            VideoWriter(target, width=16, height=16, source=probe(src), overwrite=True)
    with pytest.raises(VsrkitError, match=r"\.avi"):
        VideoWriter(tmp_path / "x.avi", width=16, height=16)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(VsrkitError, match="other files"):
        VideoWriter(folder, width=16, height=16, overwrite=True)


@pytest.mark.parametrize("name", ["o.mp4", "frames"])
def test_abort_leaves_nothing(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    with pytest.raises(RuntimeError):
        with VideoWriter(out, width=16, height=16) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            assert not out.exists() and all(p.name.startswith(".") for p in tmp_path.iterdir())
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VsrkitError, match="no frames"):
        with VideoWriter(out, width=16, height=16):
            pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VsrkitError, match="frame 0 is 8x16"):
        with VideoWriter(out, width=16, height=16) as w:
            w.write(np.zeros((16, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_is_image_folder_output(tmp_path: Path) -> None:
    assert not is_image_folder_output("a/b.mp4") and not is_image_folder_output("B.MKV")
    assert is_image_folder_output("out") and is_image_folder_output("out.mp4/") and is_image_folder_output(tmp_path)


# ----------------------------------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(VsrkitError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello, I am a text file\n" * 20)
    with pytest.raises(VsrkitError, match=r"fake\.mp4: not a readable video"):
        probe(fake)
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as o:  # a video stream that holds no frame
        s = o.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        o.start_encoding()
    with pytest.raises(VsrkitError, match=r"empty\.mkv: (no decodable video frame|.*empty or truncated)"):
        with VideoReader(empty) as r:
            list(r)


def test_truncated_files(tmp_path: Path, caplog) -> None:
    # moov at the end (as in the shared clips): the header is gone, a clear error
    clip = data_path("clips", "bikes.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(VsrkitError, match=r"cut\.mp4: not a readable video"):
        probe(cut)
    # header first (faststart): the frames before the cut are read, with a warning
    frames = [_smooth_image(48, 64, seed=i % 4) + i for i in range(30)]
    full = tmp_path / "fast.mp4"
    _encode_video(full, frames, codec="libx264", pix_fmt="yuv420p", options={"preset": "ultrafast", "g": "5"},
                  container_options={"movflags": "faststart"})
    cut2 = tmp_path / "fast_cut.mp4"
    cut2.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with caplog.at_level(logging.WARNING, logger="vsrkit.io"):
        info, got = _read_all(cut2)
    assert info.num_frames == 30 and 0 < len(got) < 30
    assert "fast_cut.mp4" in caplog.text and "30" in caplog.text
    # damage in the middle: no traceback, frames still come
    data = bytearray(clip.read_bytes())
    mid = len(data) // 3
    data[mid: mid + 4000] = os.urandom(4000)
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    with VideoReader(bad) as r:
        n = sum(1 for _ in r)
    assert n > 100


def test_subtitles_copied_or_dropped(tmp_path: Path, caplog) -> None:
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,300\nhello\n\n2\n00:00:00,500 --> 00:00:00,700\nworld\n")
    src = tmp_path / "src.mkv"
    with av.open(str(srt)) as sc, av.open(str(src), "w") as o:
        v = o.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
        so = o.add_stream_from_template(sc.streams[0])
        for i in range(25):
            fr = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 8 * i, np.uint8), format="rgb24")
            fr.pts = i
            for p in v.encode(fr):
                o.mux(p)
        for p in v.encode(None):
            o.mux(p)
        for p in sc.demux(sc.streams[0]):
            if p.size:
                p.stream = so
                o.mux(p)
    info = probe(src)
    for ext in (".mkv", ".mp4"):
        out = tmp_path / ("out" + ext)
        with caplog.at_level(logging.WARNING, logger="vsrkit.io"):
            with VideoReader(src) as r, VideoWriter(out, width=16, height=16, source=info, preset="ultrafast") as w:
                for f in r:
                    w.write(f.image, f.pts)
        with av.open(str(out)) as c:
            subs = [(p.pts * p.time_base, bytes(p)) for p in c.demux() if p.stream.type == "subtitle" and p.size]
        if ext == ".mkv":
            assert subs == [(Fraction(1, 10), b"hello"), (Fraction(1, 2), b"world")]
        else:  # mp4 holds only mov_text: dropped, and said so
            assert subs == [] and "cannot hold srt subtitles" in caplog.text


def test_image_folder_to_video_default_rate(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        _write_png(src / f"f{i}.png", _smooth_image(16, 16, seed=i), "rgb24", "rgb24")
    info = probe(src)
    with VideoReader(src) as r, VideoWriter(tmp_path / "o.mkv", width=16, height=16, source=info) as w:
        for f in r:
            w.write(f.image, f.pts)
    oinfo, frames = _read_all(tmp_path / "o.mkv")
    assert oinfo.fps == 25 and [f.pts * oinfo.time_base for f in frames] == [0, Fraction(1, 25), Fraction(2, 25)]


def test_partial_run_cuts_audio_at_video_end(tmp_path: Path) -> None:
    src = data_path("clips", "bigbuckbunny.mp4")
    info = probe(src)
    out = tmp_path / "first30.mp4"
    with VideoReader(src) as r, VideoWriter(out, width=160, height=90, source=info, preset="ultrafast") as w:
        for f in r:
            if f.index == 30:
                break
            w.write(np.ascontiguousarray(f.image[::8, ::8]), f.pts)
    p = _packets(out)
    assert len(p["video"]) == 30
    end = float(max(t + d for t, d in p["audio"]))
    assert 1.2 - 0.03 <= end <= 1.2 + 0.03  # the audio stops with the 30th frame (1.2 s), within a packet
