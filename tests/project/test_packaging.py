"""What the installed distribution holds (its RECORD): one top-level package with
the compiled renderer, the networks, the packaged model and the demo photo."""
from __future__ import annotations

import importlib.metadata
import pathlib

import pybokeh


def _files() -> list[str]:
    files = importlib.metadata.files("pybokeh")
    assert files, "pybokeh is not installed as a distribution (pip install .)"
    return [str(f) for f in files]


def test_one_top_level_package():
    # nets/ ships as pybokeh.nets: no second top-level name in site-packages
    # ('..' entries are the console script in the environment's bin/).
    tops = {f.split("/")[0] for f in _files()} - {".."}
    assert tops == {"pybokeh", f"pybokeh-{pybokeh.__version__}.dist-info"}


def test_installed_files_include_the_renderer_networks_model_demo_and_web_page():
    files = set(_files())
    assert any(f.startswith("pybokeh/_core.") and f.endswith((".so", ".pyd")) for f in files)
    for needed in ("pybokeh/nets/__init__.py", "pybokeh/nets/unet.py", "pybokeh/renderer/reference.py",
                   "pybokeh/models/pix2pix_depth.safetensors", "pybokeh/data/demo_hikers.jpg",
                   "pybokeh/serve/app.py", "pybokeh/serve/static/index.html", "pybokeh/serve/static/app.js",
                   "pybokeh/serve/static/style.css"):
        assert needed in files, needed
    scripts = [f for f in _files() if f.startswith("..") and pathlib.PurePosixPath(f).name == "pybokeh"]
    assert scripts, "the pybokeh console script is not installed"
