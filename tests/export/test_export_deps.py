"""Without onnx or onnxruntime installed, export and the onnxruntime backend say what to install (one line)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from vsrkit.cli.main import main
from vsrkit.errors import VsrkitError
from vsrkit.export.onnx import OnnxModel, export_onnx
from vsrkit.models.edgesr import build as build_esr


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_export_without_the_packages_is_a_one_line_error(missing, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError
    with pytest.raises(VsrkitError, match=rf"needs the {missing} package \(pip install 'vsrkit\[onnx\]'\)"):
        export_onnx(build_esr("eSR-TR_s2_K5_C4"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    r = CliRunner().invoke(main, ["export", "esr-tr", "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and f"needs the {missing} package" in r.output and "Traceback" not in r.output


def test_onnxruntime_backend_without_the_package_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(VsrkitError, match="needs the onnxruntime package"):
        OnnxModel(tmp_path / "m.onnx")
