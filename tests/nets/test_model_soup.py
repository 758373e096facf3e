"""bench/model_soup.py: the uniform weight average of generator files, refused across architectures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from pybokeh.nets import UNetGenerator, load_generator  # noqa: E402
from pybokeh.nets.checkpoint import save_generator  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "model_soup.py"


def _soup(*args, cwd):
    # cwd and the script's folder keep the source tree's pybokeh/ off sys.path (the installed package is used).
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_soup_is_the_mean_of_the_weights_and_refuses_another_architecture(tmp_path):
    files = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        files.append(save_generator(tmp_path / f"g{seed}.safetensors", UNetGenerator(ngf=2, levels=5, input_size=32),
                                    {"training": {"seed": seed}}))
    result = _soup(tmp_path / "soup.safetensors", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    soup, meta = load_generator(tmp_path / "soup.safetensors")
    states = [load_generator(f)[0].state_dict() for f in files]
    for name, value in soup.state_dict().items():
        torch.testing.assert_close(value, sum(s[name] for s in states) / 3, rtol=1e-6, atol=1e-7)
    assert meta["soup"] == [str(f) for f in files] and meta["training"] == {"seed": 0}
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0])  # the ingredients differ
    torch.manual_seed(0)
    other = save_generator(tmp_path / "wide.safetensors", UNetGenerator(ngf=4, levels=5, input_size=32), {})
    result = _soup(tmp_path / "bad.safetensors", files[0], other, cwd=tmp_path)
    assert result.returncode == 2 and "another architecture" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.safetensors").exists()
