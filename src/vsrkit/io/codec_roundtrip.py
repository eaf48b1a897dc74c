"""In-memory codec round trips for the real-world degradation (``vsrkit.data.realworld``): JPEG and video.

``jpeg_roundtrip``
    One ``H x W x 3`` uint8 frame encoded as a baseline JPEG at an IJG quality (1..100) and decoded back, with
    Pillow. Pillow and OpenCV (which mmagic calls) both wrap libjpeg-turbo with its defaults: the IJG quality
    scaling of the Annex K tables, 4:2:0 chroma subsampling, the accurate integer DCT, fancy upsampling.

``video_roundtrip``
    A stream of ``H x W x 3`` uint8 frames encoded at a bitrate (bits per second at 1 frame per second) with
    libx264, h264 or mpeg4 in yuv420p, and decoded back, with PyAV, frame by frame (bounded memory: the
    encoder's look-ahead only). The encoder is set up as mmagic's ``RandomVideoCompression`` sets it up through
    an mp4 container opened in memory (``add_stream(codec, rate=1)``): time base 1/1, global headers, bit-rate
    tolerance 128000 (PyAV's ``add_stream`` default); decoded frames are bit-identical to that container's
    (tested). Frames whose size differs from the first are rescaled to it by PyAV's reformatter (swscale
    bilinear), as in mmagic. One codec thread, so the result does not depend on the machine's core count.

``crf_roundtrip``
    The same round trip through libx264 at a constant rate factor (``crf``, preset ``medium``, yuv420p, 25 frames
    per second): H.264 as web video is made, the degradation of ``vsrkit eval --crf`` and of the ``crf`` option
    of the real-world pipeline. Quality per pixel, so a crop compresses about as its whole frame does.

    x264's AVX-512 routines read uninitialised memory when a side is not a multiple of 16 (the same input then
    encodes differently from run to run); on CPUs with AVX-512 x264 is given the CPU's other instruction sets
    (``asm=...``), whose results are bit-exact with x264's C code and deterministic.
"""

from __future__ import annotations

import io
import platform
from collections.abc import Iterable, Iterator
from fractions import Fraction
from functools import lru_cache

import av
import numpy as np

__all__ = ["VIDEO_CODECS", "crf_roundtrip", "jpeg_roundtrip", "video_roundtrip"]

VIDEO_CODECS = ("libx264", "h264", "mpeg4")  # mmagic's RandomVideoCompression choices; h264 opens libx264
_DECODER = {"libx264": "h264", "h264": "h264", "mpeg4": "mpeg4"}
_EVEN_ONLY = ("libx264", "h264")  # x264 refuses odd sizes in 4:2:0


# x264's names of the instruction sets below AVX-512, and the /proc/cpuinfo flag that says each is there
_X264_ASM = (("MMX2", "sse"), ("SSE", "sse"), ("SSE2", "sse2"), ("SSE3", "pni"), ("SSSE3", "ssse3"),
             ("SSE4.1", "sse4_1"), ("SSE4.2", "sse4_2"), ("LZCNT", "abm"), ("AVX", "avx"), ("FMA3", "fma"),
             ("BMI1", "bmi1"), ("BMI2", "bmi2"), ("AVX2", "avx2"))


@lru_cache(maxsize=1)
def x264_options() -> dict[str, str]:
    """Extra libx264 options for deterministic output: on an x86 CPU with AVX-512, the CPU's instruction sets
    without AVX-512 (``x264-params asm=...``); where the flags cannot be read on x86, no assembly (``asm=0``:
    same output, slower); elsewhere none."""
    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i386", "i686"):
        return {}
    try:
        with open("/proc/cpuinfo") as f:
            line = next(ln for ln in f if ln.startswith("flags"))
    except (OSError, StopIteration):
        return {"x264-params": "asm=0"}
    flags = set(line.split(":", 1)[1].split())
    if not any(fl.startswith("avx512") for fl in flags):
        return {}
    return {"x264-params": "asm=" + ",".join(name for name, flag in _X264_ASM if flag in flags)}


def _check_frame(frame: np.ndarray, what: str) -> np.ndarray:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{what} needs H x W x 3 uint8 frames, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame)


def jpeg_roundtrip(frame: np.ndarray, quality: int, *, swap_rb: bool = False) -> np.ndarray:
    """``frame`` (``H x W x 3`` uint8) after a JPEG encode at IJG ``quality`` (1..100) and a decode.

    ``swap_rb``: encode the channels in reverse order (and reverse them back after decoding), i.e. treat an RGB
    frame as BGR, as ``cv2.imencode`` does with the RGB arrays of mmagic's pipeline; this changes which channel
    counts most in the luma that keeps full resolution.
    """
    from PIL import Image

    frame = _check_frame(frame, "jpeg_roundtrip")
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    src = np.ascontiguousarray(frame[..., ::-1]) if swap_rb else frame
    buf = io.BytesIO()
    Image.fromarray(src, "RGB").save(buf, format="JPEG", quality=q)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(out[..., ::-1]) if swap_rb else out.copy()


def video_roundtrip(frames: Iterable[np.ndarray], codec: str, bitrate: int) -> Iterator[np.ndarray]:
    """The frames (``H x W x 3`` uint8) after a lossy video encode (``codec`` in ``VIDEO_CODECS``, ``bitrate``
    bits per second at 1 frame per second, yuv420p) and a decode: a generator, one output per input frame, all
    of the first frame's size.

    An odd first-frame size (which x264 refuses) is padded to even by repeating the last row/column and cropped
    back after decoding.
    """
    if codec not in VIDEO_CODECS:
        raise ValueError(f"unknown video codec {codec!r}: use one of {', '.join(VIDEO_CODECS)}")
    if int(bitrate) < 1:
        raise ValueError(f"video bitrate must be positive, got {bitrate}")
    return _roundtrip(frames, codec, {"bit_rate": int(bitrate)}, Fraction(1, 1), {"bt": "128000"})


def crf_roundtrip(frames: Iterable[np.ndarray], crf: float, preset: str = "medium") -> Iterator[np.ndarray]:
    """The frames (``H x W x 3`` uint8) after libx264 at constant rate factor ``crf`` (0..51, lower is better;
    web video is about 23..30), ``preset``, yuv420p, 25 frames/s, and a decode: one output per input frame."""
    crf = float(crf)
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf:g}")
    return _roundtrip(frames, "libx264", {}, Fraction(25), {"crf": f"{crf:g}", "preset": preset})


def _roundtrip(frames: Iterable[np.ndarray], codec: str, attrs: dict, rate: Fraction,
               options: dict[str, str]) -> Iterator[np.ndarray]:
    """Encode and decode a stream of frames with one codec context each (see ``video_roundtrip``)."""
    enc: av.VideoCodecContext | None = None
    dec: av.VideoCodecContext | None = None
    size = pad = (0, 0)

    def decode(packets: list[av.Packet]) -> Iterator[np.ndarray]:
        nonlocal dec
        for packet in packets:
            if dec is None:  # after the encoder opened: its global headers (extradata) are known
                dec = av.CodecContext.create(_DECODER[codec], "r")
                dec.thread_count = 1
                if enc.extradata:
                    dec.extradata = enc.extradata
            for fr in dec.decode(packet):
                yield _crop(fr.to_ndarray(format="rgb24"))

    def _crop(img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img[: size[0], : size[1]]) if pad != (0, 0) else img

    n = 0
    for frame in frames:
        frame = _check_frame(frame, "video_roundtrip")
        if enc is None:
            size = frame.shape[:2]
            if codec in _EVEN_ONLY:
                pad = (size[0] % 2, size[1] % 2)
            enc = av.CodecContext.create(codec, "w")
            enc.width, enc.height = size[1] + pad[1], size[0] + pad[0]
            enc.pix_fmt = "yuv420p"
            for k, v in attrs.items():
                setattr(enc, k, v)
            enc.time_base = 1 / rate
            enc.framerate = rate
            enc.thread_count = 1
            enc.flags |= av.codec.context.Flags.global_header  # as an mp4 container asks
            # PyAV's add_stream sets bit_rate_tolerance so (mpeg4's rate control reads it): in ``options``
            enc.options = {**options, **(x264_options() if codec in _EVEN_ONLY else {})}
        if pad != (0, 0) and frame.shape[:2] == size:
            frame = np.pad(frame, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = n
        n += 1
        yield from decode(enc.encode(vf))
    if enc is None:
        return
    yield from decode(enc.encode(None))
    if dec is not None:
        for fr in dec.decode(None):
            yield _crop(fr.to_ndarray(format="rgb24"))
