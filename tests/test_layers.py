"""Imports only go down (CONTRIBUTING.md, "Layout"): the import-linter contracts in pyproject.toml hold.

``lint-imports`` reads every import of ``src/vsrkit``, those inside functions too. A broken contract fails here with
the offending imports named (``vsrkit.data.datasets -> vsrkit.train.config (l.45)``), so the README's test command,
which is what CI runs, enforces the layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root/src`` with the contracts of ``root/pyproject.toml``."""
    try:
        import importlinter  # noqa: F401
    except ImportError:
        pytest.fail("import-linter is missing: pip install -e '.[test]' (the test extra pins it)")
    env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="200",
               PYTHONPATH=os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def broken(proc: subprocess.CompletedProcess) -> str:
    """What lint-imports says about the broken contracts: the imports that climb, each with its line."""
    text = proc.stdout + proc.stderr
    return text[text.index("Broken contracts"):] if "Broken contracts" in text else text


def test_imports_only_go_down():
    proc = lint_imports(ROOT)
    if proc.returncode != 0:
        pytest.fail("imports that break the layers of CONTRIBUTING.md (fix the import, or move the code it needs "
                    "down; see [tool.importlinter] in pyproject.toml):\n" + broken(proc), pytrace=False)
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, line, offending", [
    # a lazy import inside a function counts as much as one at the top
    ("models/spec.py", "def _climb():\n    from vsrkit.pipeline import upscale_file\n",
     "vsrkit.models.spec -> vsrkit.pipeline"),
    ("io/writer.py", "import vsrkit\n", "vsrkit.io.writer -> vsrkit"),
    ("infer/twopass.py", "from vsrkit.infer.engine import upscale_tensor\n", "twopass -> .engine"),
])
def test_an_upward_import_is_caught_and_named(tmp_path, module, line, offending):
    """The contracts have teeth: a copy of the package with one import that climbs (or closes a circle) fails, and
    the message names that import."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "src" / "vsrkit", tmp_path / "src" / "vsrkit",
                    ignore=shutil.ignore_patterns("__pycache__", "weights"))
    target = tmp_path / "src" / "vsrkit" / module
    target.write_text(target.read_text() + "\n\n" + line)
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert offending in broken(proc), broken(proc)


def test_contributing_tree_is_generated_from_the_code():
    """CONTRIBUTING.md's package tree is what scripts/layout.py makes of the code: a new or renamed module, or a
    changed docstring, means running ``python scripts/layout.py --write``."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("layout", root / "scripts" / "layout.py")
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    assert layout.block() in (root / "CONTRIBUTING.md").read_text(encoding="utf-8"), \
        "CONTRIBUTING.md's tree is stale: run python scripts/layout.py --write"
