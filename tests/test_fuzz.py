"""Fuzzing the readers and the command line: every case ends in a correct output or a one-line error, never a
traceback, a hang (each case is bounded in time) or an interpreter crash (each case runs in a worker process).

- hypothesis-generated valid inputs of every shape and layout (1x1, odd, long thin, grey/alpha/16-bit,
  videos and frame folders) must upscale correctly;
- hypothesis-chosen mutations of real seed files (truncated, flipped bytes, cut headers, zero-length,
  renamed to another extension, inserted/spliced bytes, absurd PNG sizes, frame folders with a frame of
  another size or layout) through the reader and the command line;
- a fixed list of mutations of every seed, so the same cases run everywhere;
- real files with sound (AAC in mp4 and mov, AC-3 in Matroska) whose chunks are duplicated, swapped or cut, in
  the media data or in the index: an output or a one-line error, and never a late stage (the join, the audio
  copy) that throws the upscaled frames away (``lost``);
- NaN, infinities, huge and negative values for every numeric option of every command (the options read from
  the command line itself, so a new option is fuzzed too).

More cases: ``python benchmarks/bench_fuzz.py --cases 3000``.
"""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fuzzing import (CHUNK_MUTATIONS, GOOD, MUTATIONS, Fuzzer, _frames, argument_case, argument_cases, argument_inputs,
                     make_audio_seeds, make_seeds, mutate, numeric_options, write_image, write_video)

COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzzer():
    f = Fuzzer(timeout=60.0)
    yield f
    f.close()
    for k, v in f.counts.items():
        COUNTS[k] = COUNTS.get(k, 0) + v


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[Path]:
    return make_seeds(tmp_path_factory.mktemp("seeds"))


def check(result, case) -> None:
    assert result.verdict in GOOD, f"{case}: {result.verdict}: {result.detail}"


def fuzz(n: int) -> settings:
    """Deterministic (the same cases everywhere), unbounded per example (each case has the worker's timeout)."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------------------------------------- valid inputs
@st.composite
def valid_inputs(draw):
    h = draw(st.one_of(st.integers(1, 18), st.sampled_from([1, 2, 600])))
    w = draw(st.one_of(st.integers(1, 18), st.sampled_from([1, 3, 900])) if h < 600 else st.integers(1, 4))
    c = draw(st.sampled_from([1, 3, 4]))
    deep = draw(st.booleans())
    n = draw(st.integers(1, 3))
    where = draw(st.sampled_from(["folder", "mkv", "mp4", "png"]))
    out = draw(st.sampled_from(["frames/", "o.mp4", "o.mkv", "o.png"]))
    return h, w, c, deep, n, where, out


@fuzz(60)
@given(valid_inputs())
def test_valid_inputs_of_every_shape_upscale_correctly(tmp_path_factory, fuzzer, spec):
    h, w, c, deep, n, where, out = spec
    d = tmp_path_factory.mktemp("valid")
    frames = _frames(n, h, w, c, np.uint16 if deep else np.uint8)
    try:
        src = _make_input(d, frames, where, c, deep)
    except av.error.FFmpegError:  # the encoder cannot make such an input (ffv1/x264 below their smallest size)
        assume(False)
    if out == "o.png" and where != "png":
        out = "o.mp4"
    result = fuzzer.run({"kind": "cli", "input": str(src), "output": str(d / out)})
    assert result.verdict == "ok", f"{spec}: {result.verdict}: {result.detail}"


def _make_input(d: Path, frames: list[np.ndarray], where: str, c: int, deep: bool) -> Path:
    if where == "png":  # one image in
        src = write_image(d / "in.png", frames[0])
    elif where == "folder":
        src = d / "in"
        src.mkdir()
        for i, a in enumerate(frames):
            write_image(src / f"{i}.png", a)
    elif where == "mkv":  # lossless, any layout
        fmt = {(1, False): "gray", (1, True): "gray16le", (3, False): "bgr0", (3, True): "rgb48le",
               (4, False): "bgra", (4, True): "rgba64le"}[(c, deep)]
        in_fmt = {1: "gray16le" if deep else "gray", 3: "rgb48le" if deep else "rgb24", 4: "rgba64le" if deep else "rgba"}[c]
        src = write_video(d / "in.mkv", frames, codec="ffv1", pix_fmt=fmt, in_fmt=in_fmt)
    else:
        rgb = [a[:, :, :3] if c >= 3 else np.repeat(a, 3, 2) for a in frames]
        rgb = [(a >> 8).astype(np.uint8) if deep else a for a in rgb]
        src = write_video(d / "in.mp4", rgb, pix_fmt="yuv444p")
    return src


# ------------------------------------------------------------------------------------------------- mutations
@fuzz(160)
@given(seed=st.integers(0, 14), kind=st.sampled_from(MUTATIONS), salt=st.integers(0, 2**16), via=st.sampled_from(["reader", "cli"]))
def test_mutated_files_end_in_an_output_or_one_line(tmp_path_factory, fuzzer, seeds, seed, kind, salt, via):
    d = tmp_path_factory.mktemp("mut")
    src = mutate(seeds[seed % len(seeds)], d, kind, random.Random(salt))
    case = ({"kind": "reader", "path": str(src)} if via == "reader"
            else {"kind": "cli", "input": str(src), "output": str(d / "out.mp4")})
    check(fuzzer.run(case), case)


def test_every_seed_with_every_mutation(tmp_path, fuzzer, seeds):
    """A fixed list: each seed x each mutation, through the reader and the command line (PNG-folder output)."""
    rng = random.Random(12)
    n = 0
    for seed in seeds:
        for kind in MUTATIONS:
            src = mutate(seed, tmp_path / f"m{n}", kind, rng)
            for case in ({"kind": "reader", "path": str(src)},
                         {"kind": "cli", "input": str(src), "output": str(tmp_path / f"m{n}" / "out/")}):
                check(fuzzer.run(case), case)
            n += 1
    assert n == len(seeds) * len(MUTATIONS)


def test_files_with_sound_whose_chunks_are_duplicated_swapped_or_cut(tmp_path, fuzzer):
    """Each file with sound x each chunk mutation, twice, into a video of each container: an output (with or
    without its sound) or a one-line error; the worker counts a late stage that loses the frames as ``lost``."""
    seeds = make_audio_seeds(tmp_path / "seeds")
    rng = random.Random(24)
    n = 0
    for seed in seeds:
        for kind in CHUNK_MUTATIONS:
            for out in ("out.mp4", "out.mkv"):
                d = tmp_path / f"m{n}"
                src = mutate(seed, d, kind, rng)
                assert src.read_bytes() != seed.read_bytes()
                case = {"kind": "cli", "input": str(src), "output": str(d / out)}
                check(fuzzer.run(case), case)
                n += 1
    assert n == len(seeds) * len(CHUNK_MUTATIONS) * 2


def test_the_undecodable_audio_of_a_damaged_index_keeps_the_video(tmp_path, fuzzer):
    """What the hostile run found: a chunk of the index duplicated so that the audio has no codec; the video is
    written (the sound left out), never lost at the join."""
    from fuzzing import mutate_chunks

    seed = make_audio_seeds(tmp_path / "seeds")[0]
    data = seed.read_bytes()
    rng = random.Random(0)
    found = 0
    for k in range(200):  # index damage that leaves the video readable and the audio without a decoder
        damaged = mutate_chunks(data, "chunk_dup", rng)
        try:
            with av.open(__import__("io").BytesIO(damaged)) as c:
                kinds = [(s.type, s.codec_context is None) for s in c.streams]
        except (av.error.FFmpegError, MemoryError, UnicodeDecodeError, ValueError):
            continue
        if kinds == [("video", False), ("audio", True)]:
            src = tmp_path / f"d{k}.mp4"
            src.write_bytes(damaged)
            case = {"kind": "cli", "input": str(src), "output": str(tmp_path / f"o{k}.mp4")}
            result = fuzzer.run(case)
            assert result.verdict == "ok", f"{case}: {result.verdict}: {result.detail}"
            found += 1
            if found == 2:
                break
    assert found, "no damaged index left the audio without a decoder"


def test_every_numeric_option_of_every_command_takes_bad_numbers(tmp_path, fuzzer):
    """NaN, infinities, huge and negative numbers: the command runs or says one line, never a traceback (CI takes
    three values per option; benchmarks/bench_fuzz.py takes them all)."""
    options = numeric_options()
    assert ("upscale", "--max-memory", True) in options and ("upscale", "--threads", False) in options
    inputs = argument_inputs(tmp_path / "in")
    cases = argument_cases(inputs, values_per_option=3, rng=random.Random(3))
    assert {name for name, _, _ in cases} == set(inputs)
    for i, (name, opt, value) in enumerate(cases):
        out = tmp_path / f"a{i}"
        out.mkdir()
        case = argument_case(inputs, name, opt, value, out)
        check(fuzzer.run(case), case)


def test_zero_length_and_wrong_extensions(tmp_path, fuzzer, seeds):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "video.png").write_bytes(seeds[0].read_bytes())  # an mp4 named .png
    (tmp_path / "image.mp4").write_bytes(seeds[8].read_bytes())  # a png named .mp4
    for name in ("empty.mp4", "empty.png", "video.png", "image.mp4"):
        case = {"kind": "cli", "input": str(tmp_path / name), "output": str(tmp_path / f"{name}-out.mkv")}
        check(fuzzer.run(case), case)


def test_the_worker_reports_hangs_and_crashes_and_goes_on():
    f = Fuzzer(timeout=3.0)
    try:
        assert f.run({"kind": "_hang"}).verdict == "hang"
        assert f.run({"kind": "_crash"}).verdict == "crash"
        assert f.run({"kind": "reader", "path": "/nonexistent.mp4"}).verdict == "error"
    finally:
        f.close()


def test_no_case_hung_or_crashed(fuzzer):
    """Runs last in this file: the totals of all the cases above."""
    assert fuzzer.counts.get("hang", 0) == 0 and fuzzer.counts.get("crash", 0) == 0, fuzzer.counts
    print("fuzz cases:", fuzzer.counts)
    assert sum(fuzzer.counts.values()) >= 300, fuzzer.counts
