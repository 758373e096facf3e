"""Speed and memory against a real peer: GIMP's GEGL lens blur (Debian ``gegl``).

On the 12 MP frame of ``bench_render`` (4032×3024, max CoC radius 16 / 32 / 64 px):

* ``gegl:lens-blur`` with a per-pixel radius map (aux input: |CoC| / radius as a
  16-bit linear mask), timed as a whole ``gegl`` process, and the same process
  with the blur replaced by a per-pixel ``gegl:over`` (its PNG load and save,
  radius-independent); ``summarize.py`` reports pybokeh's ratio to GEGL net of
  that I/O.  Skipped, with a note, where the ``gegl`` binary is missing
  (``apt-get install gegl``);
* ``pybokeh.render(..., backend="cpp")`` with 1 and 2 threads (the public call:
  checks, CoC map, highlight map and kernel);
* peak resident memory of one render above the process's resident memory before it,
  in a fresh process (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``;
  tracemalloc does not see C++ allocations), for
  cpp and numba at r = 16 and 64, and cpp on a 12000×8000 frame.

Run::

    pytest bench/bench_peer.py --benchmark-only --benchmark-json=bench-peer.json
    python bench/summarize.py bench-peer.json
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pybokeh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import RADII, frame  # noqa: E402

GEGL = shutil.which("gegl")
HERE = Path(__file__).resolve().parent

_XML = """<?xml version='1.0' encoding='UTF-8'?>
<gegl>
  <node operation='{op}'>
    {params}
    <node operation='gegl:load'><params><param name='path'>{mask}</param></params></node>
  </node>
  <node operation='gegl:load'><params><param name='path'>{image}</param></params></node>
</gegl>
"""


@pytest.fixture(scope="module")
def scene():
    return frame()


@pytest.fixture(scope="module")
def gegl_files(scene, tmp_path_factory):
    """The frame as PNG, one radius mask per radius, and the XML graphs: ``{radius or 'io': xml path}``."""
    if GEGL is None:
        pytest.skip("gegl not installed (apt-get install gegl): no peer timing")
    from PIL import Image

    image, disparity = scene
    d = tmp_path_factory.mktemp("gegl")
    Image.fromarray(image).save(d / "frame.png", compress_level=1)
    graphs = {}
    for radius in RADII:
        coc = pybokeh.coc_map(disparity, 0.5, max_blur=2.0 * radius, image_shape=image.shape[:2])
        mask = np.clip(np.abs(coc) / radius, 0.0, 1.0)
        Image.fromarray((mask * 65535 + 0.5).astype(np.uint16)).save(d / f"mask{radius}.png", compress_level=1)
        params = (f"<params><param name='radius'>{radius}</param>"
                  "<param name='linear-mask'>true</param></params>")
        xml = _XML.format(op="gegl:lens-blur", params=params, mask=d / f"mask{radius}.png", image=d / "frame.png")
        (d / f"blur{radius}.xml").write_text(xml)
        graphs[radius] = d / f"blur{radius}.xml"
    xml = _XML.format(op="gegl:over", params="", mask=d / f"mask{RADII[0]}.png", image=d / "frame.png")
    (d / "io.xml").write_text(xml)
    graphs["io"] = d / "io.xml"
    graphs["out"] = d / "out.png"
    return graphs


def _gegl(xml: Path, out: Path) -> None:
    subprocess.run([GEGL, "-i", str(xml), "-o", str(out)], check=True, capture_output=True)


@pytest.mark.parametrize("radius", RADII)
def test_gegl_lens_blur(benchmark, gegl_files, radius):
    benchmark.group = f"12 MP, max radius {radius} px"
    benchmark.extra_info.update(radius=radius, backend="gegl (process)")
    benchmark.pedantic(_gegl, args=(gegl_files[radius], gegl_files["out"]), rounds=2, iterations=1)


def test_gegl_png_io(benchmark, gegl_files):
    benchmark.group = "12 MP, GEGL PNG load + save"
    benchmark.extra_info.update(radius=None, backend="gegl PNG I/O")
    benchmark.pedantic(_gegl, args=(gegl_files["io"], gegl_files["out"]), rounds=2, iterations=1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("radius", RADII)
def test_pybokeh_cpp(benchmark, scene, radius, threads):
    image, disparity = scene
    benchmark.group = f"12 MP, max radius {radius} px"
    backend = "cpp" if threads == 2 else f"cpp {threads} thread"
    benchmark.extra_info.update(radius=radius, backend=backend, threads=threads)
    kwargs = dict(max_blur=2.0 * radius, backend="cpp", threads=threads)
    benchmark.pedantic(pybokeh.render, args=(image, disparity, 0.5), kwargs=kwargs, rounds=2, iterations=1)


_RSS = textwrap.dedent("""
    import gc, json, sys
    sys.path.insert(0, {here!r})
    import numpy as np
    import pybokeh
    from bench_render import frame
    backend, radius, height, width = {backend!r}, {radius}, {height}, {width}
    if (height, width) == (3024, 4032):
        image, disparity = frame()
    else:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        disparity = np.linspace(0, 1, height, dtype=np.float32)[:, None].repeat(width, 1)
    # Compile / warm up every path the measured render takes (all its depths and radii, on a 1/16 sample):
    # a cold Numba cache compiling during the render would be counted as its memory.
    pybokeh.render(image[::16, ::16].copy(), disparity[::16, ::16].copy(), 0.5, max_blur=2.0 * radius,
                   backend=backend)

    def status_kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:   # reset the peak (VmHWM) to the current RSS
        f.write("5")
    base = status_kb("VmRSS")
    out = pybokeh.render(image, disparity, 0.5, max_blur=2.0 * radius, backend=backend)
    print(json.dumps({{"above_baseline_mb": (status_kb("VmHWM") - base) / 1024, "image_mb": image.nbytes / 2**20}}))
""")


@pytest.mark.parametrize("backend,radius,height,width", [
    ("cpp", 16, 3024, 4032), ("cpp", 64, 3024, 4032), ("numba", 16, 3024, 4032), ("numba", 64, 3024, 4032),
    ("cpp", 64, 8000, 12000),
])
def test_peak_memory(benchmark, backend, radius, height, width):
    """Peak RSS of one render above the process's baseline (inputs already in memory), in a fresh process."""
    code = _RSS.format(here=str(HERE), backend=backend, radius=radius, height=height, width=width)
    result = {}

    def run():
        # Outside the repository: its source tree (no compiled modules) must not shadow the installed package.
        proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                              cwd=tempfile.gettempdir())
        result.update(json.loads(proc.stdout.strip().splitlines()[-1]))

    benchmark.group = "peak memory of one render (fresh process)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(radius=radius, backend=f"{backend} memory", megapixels=height * width / 1e6,
                                peak_rss_above_baseline_mb=result["above_baseline_mb"],
                                image_mb=result["image_mb"],
                                ratio_to_image=result["above_baseline_mb"] / result["image_mb"])
