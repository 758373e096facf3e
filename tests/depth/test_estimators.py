"""Pluggable estimators: model names, output conventions, and ONNX models (offline).

The ONNX path runs the packaged model exported by ``pybokeh export-onnx`` and a hand-built
ONNX graph; the transformers path is in tests/depth/test_estimators_hf.py.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh.cli import demo_photo_path, main
from pybokeh.estimators import normalise_metric, normalise_relative, resolve

torch = pytest.importorskip("torch")

#: Stated tolerance of the exported packaged model against PyTorch: the same float32
#: network through two runtimes (measured max difference 1e-6 on the network output).
ONNX_NETWORK_ATOL = 1e-4
#: End to end (estimate_depth with model="pix2pix.onnx" vs "pix2pix"), in disparity: the ONNX
#: path resizes the grid photo to 128×128 with PIL (no torch), the torch path with torch's
#: antialiased bilinear; measured max 9e-4 on a 300×200 crop with the v1 weights, 5.2e-3 on a
#: 160×120 crop with the v2 weights (issue 12), 4e-7 on the
#: 1024×682 demo photo.
ONNX_PIPELINE_ATOL = 1e-2


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(demo_photo_path()).convert("RGB"))[100:300, 250:550].copy()


# ------------------------------------------------------------------ conversions

def test_relative_and_metric_outputs_become_disparity_in_the_unit_range():
    rng = np.random.default_rng(0)
    rel = rng.normal(5.0, 2.0, (30, 40))
    out = normalise_relative(rel)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert np.corrcoef(out.ravel(), rel.ravel())[0, 1] > 0.99           # larger = nearer kept
    z = rng.uniform(1.0, 10.0, (30, 40))
    disp = normalise_metric(z)
    assert disp.max() == 1.0 and np.corrcoef(disp.ravel(), 1 / z.ravel())[0, 1] > 0.99   # 1/z, nearer = brighter
    # Proportional to inverse depth: halving the distance doubles the value (below the 99th-percentile clip).
    i, j = np.unravel_index(np.argmax(z), z.shape)
    z2 = z.copy()
    z2[i, j] /= 2
    assert normalise_metric(z2)[i, j] == pytest.approx(2 * disp[i, j], rel=1e-5)
    assert (normalise_relative(np.ones((4, 4))) == 0).all()


def test_model_names_resolve(tmp_path):
    assert resolve("pix2pix").packaged
    with pytest.raises(ValueError, match="neither"):
        resolve("midas")
    with pytest.raises(TypeError, match="model"):
        resolve(3)
    with pytest.raises(ValueError, match="weights applies to model='pix2pix' only"):
        resolve("x.onnx", weights="g.safetensors")
    assert type(resolve("hf:some-org/some-model")).__name__ == "HFEstimator"   # resolved, nothing fetched
    assert type(resolve("some-org/some-model")).__name__ == "HFEstimator"
    own = resolve(str(tmp_path / "run" / "generator.safetensors"))  # a generator from pybokeh train
    assert type(own).__name__ == "Pix2PixEstimator" and not own.packaged
    assert own.path == tmp_path / "run" / "generator.safetensors"


def test_render_cli_with_a_trained_generator_file(photo, tmp_path, capsys):
    # --depth-model names a generator file from `pybokeh train` (here: a copy of the packaged one).
    from pybokeh.estimators.pix2pix import default_weights

    own = tmp_path / "generator.safetensors"
    own.write_bytes(default_weights().read_bytes())
    small = np.ascontiguousarray(photo[:120, :160])
    Image.fromarray(small).save(tmp_path / "p.png")
    assert main(["render", str(tmp_path / "p.png"), "--depth-model", str(own), "-o", str(tmp_path / "o.png"),
                 "--save-depth", str(tmp_path / "d.npy")]) == 0
    assert f"Pix2Pix generator {own}" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), pybokeh.estimate_depth(small), atol=1e-6)
    assert main(["render", str(tmp_path / "p.png"), "--depth-model", str(tmp_path / "missing.safetensors"),
                 "-o", str(tmp_path / "o2.png")]) == 1  # as a missing .onnx file
    err = capsys.readouterr().err
    assert "missing.safetensors not found" in err and "Traceback" not in err
    assert not (tmp_path / "o2.png").exists()


# ------------------------------------------------------------------ ONNX

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "pix2pix.onnx"
    assert main(["export-onnx", "-o", str(path), "-q"]) == 0
    return path


def test_exported_network_matches_torch(exported):
    from pybokeh.depth import default_weights
    from pybokeh.nets.checkpoint import load_generator

    model, _ = load_generator(default_weights())
    model = model.float().eval()
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        ref = model(x).numpy()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    assert got.shape == ref.shape == (2, 1, 128, 128)
    np.testing.assert_allclose(got, ref, atol=ONNX_NETWORK_ATOL, rtol=0)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["pybokeh.output"] == "pix2pix-target" and meta["pybokeh.input_size"] == "128,128"


def test_onnx_estimate_matches_the_packaged_model(exported, photo):
    ref = pybokeh.estimate_depth(photo, device="cpu")
    got = pybokeh.estimate_depth(photo, model=str(exported))
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=ONNX_PIPELINE_ATOL)
    assert np.abs(got - ref).mean() < 2e-4


def test_onnx_path_needs_no_torch_and_names_its_extra(exported, photo, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pybokeh\[onnx\]'):
        pybokeh.estimate_depth(photo, model=str(exported))


def test_foreign_onnx_model_uses_the_default_conventions(tmp_path):
    # A hand-built "depth model": the mean of the ImageNet-normalised channels, as relative disparity
    # (a dynamic H×W input falls back to 518×518 like Depth Anything's exports).
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)
    graph = helper.make_graph([node], "mean", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, "h", "w"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "mean.onnx")
    ramp = np.tile(np.linspace(0, 255, 90).astype(np.uint8), (60, 1))
    photo = np.stack([ramp] * 3, axis=-1)
    out = pybokeh.estimate_depth(photo, model=str(tmp_path / "mean.onnx"))
    assert out.shape == (60, 90)
    assert out[:, :5].mean() < 0.05 and out[:, -5:].mean() > 0.95      # brighter input = "nearer" here
    assert np.all(np.diff(out.mean(axis=0)) >= -1e-3)


def test_render_cli_with_the_onnx_model(exported, tmp_path, capsys):
    photo = np.asarray(Image.open(demo_photo_path()).convert("RGB"))[:120, :160].copy()
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert main(["render", str(tmp_path / "p.png"), "--depth-model", str(exported), "-o", str(tmp_path / "o.png"),
                 "--save-depth", str(tmp_path / "d.npy")]) == 0
    err = capsys.readouterr().err
    assert f"with the ONNX model {exported}" in err
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), pybokeh.estimate_depth(photo), atol=ONNX_PIPELINE_ATOL)
    assert main(["depth", str(tmp_path / "p.png"), "--model", str(exported), "-o", str(tmp_path / "d2.npy")]) == 0
    assert "ONNX model" in capsys.readouterr().err
