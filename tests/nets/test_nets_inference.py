"""Generator files (safetensors + metadata) and deterministic inference at any size."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pybokeh.nets import TARGET_CONVENTION, UNetGenerator, load_generator, predict_disparity, save_generator  # noqa: E402
from pybokeh.nets.checkpoint import read_generator_meta  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return UNetGenerator(ngf=4, levels=6, input_size=64)


def test_save_load_roundtrip_is_plain_safetensors(tmp_path, model):
    path = save_generator(tmp_path / "g.safetensors", model, {"training": {"data": "x", "steps": 3}})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])  # safetensors: a JSON header then raw tensor bytes, no pickle
    meta = json.loads(header["__metadata__"]["pybokeh"])
    assert meta["architecture"]["ngf"] == 4 and meta["architecture"]["levels"] == 6 and meta["input_size"] == 64
    assert meta["depth_target"] == TARGET_CONVENTION and meta["training"]["steps"] == 3
    loaded, meta2 = load_generator(path)
    assert meta2 == meta == read_generator_meta(path)
    assert not loaded.training and loaded.input_size == 64
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    with pytest.raises(TypeError, match="JSON"):
        save_generator(tmp_path / "h.safetensors", model, {"bad": object()})
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.safetensors")


def test_predict_is_deterministic_any_size_and_restores_mode(model):
    rng = np.random.default_rng(0)
    model.train()  # dropout active in training mode; inference must switch it off
    for h, w in [(64, 64), (37, 53), (130, 20), (1, 1)]:
        img = rng.random((h, w, 3), dtype=np.float32)
        for mode in ("resize", "pad"):
            a = predict_disparity(model, img, mode=mode)
            b = predict_disparity(model, img, mode=mode)
            assert a.shape == (h, w) and a.dtype == np.float32
            np.testing.assert_array_equal(a, b)
            assert 0 <= a.min() and a.max() <= 1
    assert model.training
    # At the training size "resize" is the plain eval-mode forward pass.
    img = rng.random((64, 64, 3), dtype=np.float32)
    with torch.no_grad():
        ref = (model.eval()(torch.from_numpy(img.transpose(2, 0, 1))[None] * 2 - 1)[0, 0].numpy() + 1) / 2
    np.testing.assert_allclose(predict_disparity(model, img), ref, atol=1e-5)
    np.testing.assert_allclose(predict_disparity(model, (img * 255).round().astype(np.uint8)),
                               predict_disparity(model, (img * 255).round() / 255), atol=1e-6)


def test_predict_rejects_bad_input(model):
    with pytest.raises(ValueError, match="image"):
        predict_disparity(model, np.zeros((8, 8)))
    with pytest.raises(TypeError, match="dtype"):
        predict_disparity(model, np.zeros((8, 8, 3), np.int32))
    with pytest.raises(ValueError, match="NaN"):
        predict_disparity(model, np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="mode"):
        predict_disparity(model, np.zeros((8, 8, 3), np.float32), mode="crop")
    with pytest.raises(ValueError, match="multiple"):
        predict_disparity(model, np.zeros((8, 8, 3), np.float32), size=48)
