"""The transformers estimator, offline: a tiny randomly initialised Depth Anything model built
from a config and saved to a temporary folder runs the whole estimate_depth path (nothing is
downloaded)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh.cli import demo_photo_path, main
from pybokeh.estimators import normalise_relative, resolve

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(demo_photo_path()).convert("RGB"))[100:300, 250:550].copy()


transformers = pytest.importorskip("transformers")


def _tiny_depth_anything(folder, kind: str) -> None:
    """A 23 k-parameter Depth Anything with a random head that gives a varied map."""
    cfg = transformers.DepthAnythingConfig(
        backbone_config=transformers.Dinov2Config(image_size=28, patch_size=14, hidden_size=16, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=32,
                                                  out_features=["stage1", "stage2"], reshape_hidden_states=False),
        reassemble_hidden_size=16, patch_size=14, neck_hidden_sizes=[8, 8], reassemble_factors=[1, 1],
        fusion_hidden_size=8, head_hidden_size=8, depth_estimation_type=kind)
    torch.manual_seed(0)
    model = transformers.DepthAnythingForDepthEstimation(cfg)
    with torch.no_grad():  # random init leaves the ReLU head near zero: make its output vary
        for conv in (model.head.conv2, model.head.conv3):
            conv.weight.normal_(0.0, 2.0)
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(folder)
    transformers.DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                                   image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(
        folder)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    for kind in ("relative", "metric"):
        _tiny_depth_anything(base / kind, kind)
    return base


def test_transformers_model_runs_the_whole_path(tiny_models, photo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_models / "relative"
    out = pybokeh.estimate_depth(photo, model=str(folder), device="cpu")
    assert out.shape == photo.shape[:2] and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > 0.05
    np.testing.assert_array_equal(out, pybokeh.estimate_depth(photo, model=f"hf:{folder}", device="cpu"))
    # The estimator's grid map is the model's own output, normalised (checked against a direct run).
    from pybokeh.depth import _grid_shape, _prepare

    low_rgb, _, _ = _prepare(photo, _grid_shape(*photo.shape[:2]))
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    model = transformers.AutoModelForDepthEstimation.from_pretrained(folder).eval()
    inputs = processor(images=np.round(low_rgb * 255).astype(np.uint8), return_tensors="pt")
    with torch.no_grad():
        direct = normalise_relative(model(**inputs).predicted_depth[0].numpy())
    np.testing.assert_allclose(resolve(str(folder)).predict(low_rgb, torch.device("cpu")), direct, atol=1e-5)


def test_metric_models_are_inverted(tiny_models, photo):
    # Same weights, one config says relative disparity, the other metric depth: opposite orderings.
    low = np.asarray(Image.fromarray(photo).resize((96, 64)), np.float32) / 255
    rel = resolve(str(tiny_models / "relative")).predict(low, torch.device("cpu"))
    met = resolve(str(tiny_models / "metric")).predict(low, torch.device("cpu"))
    from scipy.stats import spearmanr

    assert spearmanr(rel.ravel(), met.ravel()).statistic < -0.5


def test_render_cli_with_a_transformers_model(tiny_models, tmp_path, capsys):
    photo = np.asarray(Image.open(demo_photo_path()).convert("RGB"))[:120, :160].copy()
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert main(["render", str(tmp_path / "p.png"), "--depth-source", "estimate", "--depth-model",
                 f"hf:{tiny_models / 'relative'}", "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert f"with the transformers model {tiny_models / 'relative'}" in err and "note: the packaged" not in err


def test_missing_transformers_names_the_extra(monkeypatch, photo, tiny_models):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r'pybokeh\[hf\]'):
        pybokeh.estimate_depth(photo, model=str(tiny_models / "relative"))


