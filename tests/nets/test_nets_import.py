"""pybokeh, its CLI parser and pybokeh.nets import without PyTorch."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_no_torch_needed_to_import_or_parse(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None          # any `import torch` now fails
        import pybokeh, pybokeh.nets, pybokeh.nets.cli
        from pybokeh.cli import build_parser, main
        args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--steps", "5", "--l1-only"])
        assert args.steps == 5 and args.l1_only and args.size == 256 and args.lambda_l1 == 100.0
        try:
            pybokeh.nets.UNetGenerator
        except ImportError as exc:
            assert "pip install" in str(exc), exc
        else:
            raise AssertionError("UNetGenerator imported without torch")
        assert main(["eval-depth", "--weights", "w", "--data", "d"]) == 2
        print("OK")
    """)
    # cwd outside the repository so the installed package, not the source tree, is imported.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"
    assert "needs PyTorch" in out.stderr
