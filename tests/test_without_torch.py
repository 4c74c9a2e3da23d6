"""torch is optional: in a Python where importing torch fails, every module outside the torch backends imports,
an ONNX checkpoint is evaluated, and the torch paths say which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _iodata import jpeg
from facebench.io.binpack import write_bin
from facebench.results import read_results

REPO = Path(__file__).resolve().parents[1]
DEMO_ONNX = REPO / "facebench" / "demo" / "assets" / "demo_mobilefacenet_small.onnx"

# modules that need torch by design: the torch backends, backbones, export and training
TORCH_MODULES = ("facebench.train", "facebench.models.backbones", "facebench.models.torch_backend",
                 "facebench.models.export", "facebench.models.registry", "facebench.models.dlib_torch")

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return _python(f"import sys\nfrom facebench.cli import main\nsys.exit(main({args!r}))", cwd)


def test_every_module_outside_the_torch_backends_imports_without_torch(tmp_path):
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "facebench").rglob("*.py")
    )
    wanted = [m for m in modules if not m.startswith(TORCH_MODULES) and m != "facebench.__main__"]
    assert "facebench.models.dlib" in wanted and "facebench.doctor" in wanted and "facebench.api" in wanted
    done = _python(
        "import importlib\n"
        f"for m in {wanted!r}:\n    importlib.import_module(m)\n"
        "assert not any(k == 'torch' or k.startswith('torch.') for k in sys.modules)\n"
        "try:\n    import torch\nexcept ImportError:\n    print('torch blocked')\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch blocked"


@pytest.mark.slow
def test_onnx_run_works_and_torch_paths_name_the_extra(tmp_path):
    write_bin(tmp_path / "demo_verify.bin", [jpeg(i) for i in range(40)], [k % 2 == 0 for k in range(20)])
    ran = _cli(["run", str(DEMO_ONNX), "-b", "demo_verify", "--data-root", str(tmp_path), "--no-cache",
                "--workers", "0", "--out", str(tmp_path / "out")], tmp_path)
    assert ran.returncode == 0, ran.stderr
    doc = read_results(tmp_path / "out")
    assert doc.benchmarks["demo_verify"].counts["n_pairs"] == 20
    assert doc.benchmarks["demo_verify"].value("accuracy") > 0

    with zipfile.ZipFile(tmp_path / "m.pth", "w") as zf:  # a zip without code/: a state_dict to the sniffer
        zf.writestr("archive/data.pkl", b"")
    for args, what in (
        (["run", str(tmp_path / "m.pth"), "--arch", "iresnet50", "-b", "demo_verify", "--data-root", str(tmp_path)],
         "a pytorch checkpoint"),
        (["train", "--config", str(REPO / "examples" / "demo_train.toml")], "facebench train"),
    ):
        failed = _cli(args, tmp_path)
        assert failed.returncode == 2
        assert f"{what}" in failed.stderr and 'pip install "facebench[torch]"' in failed.stderr, failed.stderr
