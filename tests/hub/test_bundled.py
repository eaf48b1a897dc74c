"""The fast models trained by vsrkit ship inside the package: they load with no download, `vsrkit models` shows
them as here, and they reproduce the validation PSNR of their model card (hub/cards.py, issue 13)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from golden import data_path
from media import make_clip
from vsrkit.cli.main import main
from vsrkit.errors import VsrkitError
from vsrkit.hub import download
from vsrkit.eval.cards import validate, write_heldout_frames
from vsrkit.hub.cards import HELD_OUT, VALIDATION_FRAMES, card_path, read_card
from vsrkit.hub.checkpoint import load_with_meta, sha256_file
from vsrkit.hub.loader import load_model
from vsrkit.hub.registry import CPU_DEFAULT_MODEL, DEFAULT_MODEL, FAST_MODEL, all_entries, default_model
from vsrkit.models.registry import get_entry

NAMES = sorted(e.name for _, e in all_entries() if e.weights is not None and e.weights.bundled)
README = Path(__file__).resolve().parents[2] / "README.md"


def documented_models() -> dict[str, str]:
    """The model names the README promises: the default with a GPU and on a CPU, and what --fast runs."""
    text = README.read_text()
    found = {
        "gpu": re.search(r"with a GPU, `([^`]+)` \(the default", text),
        "cpu": re.search(r"On a CPU the default\s+is (?:still )?`([^`]+)`", text),
        "fast": re.search(r"^vsrkit upscale \S+ -o \S+ --fast\s+# = --model (\S+)$", text, re.M),
    }
    missing = [k for k, m in found.items() if m is None]
    assert not missing, f"README.md no longer states the {missing} model in the expected words"
    return {k: m.group(1) for k, m in found.items()}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache and no network: anything that is not bundled would fail to load."""
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("VSRKIT_OFFLINE", "1")
    monkeypatch.setattr(download, "download", lambda *a, **k: pytest.fail("a bundled model tried to download"))


@pytest.mark.parametrize("name", NAMES)
def test_bundled_file_is_shipped_with_its_arguments(name):
    _, entry = get_entry(name)
    path = card_path(name, ".safetensors")
    assert entry.weights.bundled and path.is_file()
    assert path.stat().st_size < 2 * 2**20  # a few MB for all of them together
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # of the shipped bytes, not through vsrkit's helper
    assert entry.weights.sha256 == digest and sha256_file(path) == digest
    sd, meta = load_with_meta(path)
    assert meta["arch"] == entry.arch and meta["kwargs"] == entry.kwargs  # saved with its constructor arguments
    card = read_card(name)
    assert card == json.loads(card_path(name, ".json").read_text())
    assert card["name"] == name and card["weights"] == dict(card["weights"], file=path.name, sha256=digest)
    assert (card["arch"], card["kwargs"]) == (entry.arch, entry.kwargs)
    assert card["params"] == sum(t.numel() for t in sd.values())  # counted in the file
    md = card_path(name, ".md").read_text()  # the readable card states the same file
    assert f"{card['params']:,} parameters" in md and f"`{path.name}` (sha256 `{digest[:16]}" in md
    assert set(card["validation"]["clips"]) == set(HELD_OUT) and card["validation"]["frames"] == VALIDATION_FRAMES
    assert card_path(name, ".md").is_file()
    for clip in HELD_OUT:  # the held-out clips were not trained on
        assert clip not in card["training"]["clips"]


@pytest.mark.parametrize("name", NAMES)
def test_bundled_models_load_offline_and_are_listed(name, offline):
    net = load_model(name)
    assert not net.training and net.spec.name == name
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.startswith(name + " "))
    assert row.split()[2] == "yes"


def test_corrupt_bundled_file_is_one_clear_error(tmp_path, monkeypatch, offline):
    name = NAMES[0]
    bad = tmp_path / "weights"
    bad.mkdir()
    data = bytearray(card_path(name, ".safetensors").read_bytes())
    data[-1] ^= 1
    (bad / f"{name}.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(download, "BUNDLED_DIR", bad)
    with pytest.raises(VsrkitError, match=f"{name}.*corrupt.*reinstall"):
        load_model(name)
    (bad / f"{name}.safetensors").unlink()
    with pytest.raises(VsrkitError, match=f"{name}.*missing"):
        load_model(name)


def test_default_model_by_device():
    """The defaults are the README's (not the constants restated), and they are registered models with
    pretrained weights; --fast runs a bundled one (no download)."""
    docs = documented_models()
    assert default_model("cuda") == default_model("cuda:1") == DEFAULT_MODEL == docs["gpu"]
    assert default_model("cpu") == CPU_DEFAULT_MODEL == docs["cpu"]
    assert FAST_MODEL == docs["fast"] and FAST_MODEL in NAMES
    for name in (docs["gpu"], docs["cpu"], docs["fast"]):
        assert get_entry(name)[1].weights is not None, name
    assert get_entry(docs["fast"])[1].weights.bundled


def test_fast_flag_refuses_a_second_model(tmp_path):
    r = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), "--fast",
                                  "--model", "bicubic"])
    assert r.exit_code == 2 and "--fast" in r.output


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    clips = data_path("clips")
    return write_heldout_frames(clips, tmp_path_factory.mktemp("heldout"))


@pytest.mark.parametrize("name", NAMES)
def test_bundled_models_reproduce_their_card(name, heldout):
    """The card's validation PSNR (Y) on the first frames of the held-out clips, within 0.05 dB."""
    card = read_card(name)
    for degradation, rows in card["validation"]["results"].items():
        base, _, crf = degradation.partition("+crf")  # bi+crf23: BI, then H.264 at crf 23 (vsrkit eval --crf)
        got = validate(name, heldout, base, metrics=("psnr",), crf=float(crf) if crf else None)
        want = rows[name]
        assert abs(got["overall"]["psnr"] - want["psnr"]) <= 0.05, (degradation, got, want)
        for clip, values in want["clips"].items():
            assert abs(got["clips"][clip]["psnr"] - values["psnr"]) <= 0.05, (degradation, clip)


def test_cpu_default_hints_at_fast_and_fast_flag_uses_the_bundled_model(tmp_path, offline, monkeypatch):
    from vsrkit import pipeline
    from vsrkit.io import probe

    src = make_clip(tmp_path / "in.mp4", n=3)
    asked: list = []
    real_load = pipeline.load_model

    def spy(name=None, **kw):
        asked.append(name)
        return real_load("bicubic-x4")  # stands in for the (large) default model

    monkeypatch.setattr(pipeline, "load_model", spy)
    said: list[str] = []
    pipeline.upscale_file(src, tmp_path / "default.mp4", device="cpu", progress=False, say=said.append)
    docs = documented_models()
    assert asked == [docs["cpu"]]
    assert any("--fast" in s and docs["fast"] in s for s in said)
    monkeypatch.setattr(pipeline, "load_model", real_load)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "fast.mp4"), "--fast", "--device", "cpu",
                                  "-q"])
    assert r.exit_code == 0, r.output
    info = probe(tmp_path / "fast.mp4")
    assert (info.width, info.height) == (128, 96)
