"""Training: overfitting, exact resumption after a kill, torchrun DDP, CLI train/eval-depth."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from _nets_helpers import make_rgbd_layout

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

import pybokeh  # noqa: E402
from pybokeh.cli import main  # noqa: E402
from pybokeh.nets import PatchDiscriminator, UNetGenerator, load_generator, predict_disparity  # noqa: E402
from pybokeh.nets.augment import AugmentConfig  # noqa: E402
from pybokeh.nets.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from pybokeh.nets.data import read_rgbd  # noqa: E402
from pybokeh.nets.dataset import FrameCache, PairDataset  # noqa: E402
from pybokeh.nets.evaluate import score_frame  # noqa: E402
from pybokeh.nets.losses import masked_l1  # noqa: E402
from pybokeh.nets.train import KILL_ENV, _params_digest, _step  # noqa: E402

TINY = ["--size", "32", "--ngf", "4", "--ndf", "8", "--batch-size", "2", "--log-every", "1",
        "--workers", "0", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_rgbd_layout(tmp_path_factory.mktemp("rgbd"), n_train=6, n_eval=2)


def _cli(*args, cwd, env_extra=None, timeout=300):
    # cwd outside the repository: `python -m` puts cwd first on sys.path, and the source
    # tree's pybokeh/ (no compiled module, no nets/) would shadow the installed package.
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "pybokeh.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def test_tiny_model_overfits_a_few_frames(data):
    torch.set_num_threads(1)
    cache = FrameCache([f for f in read_rgbd(data) if f.split == "train"][:4])
    ds = PairDataset(cache, 32, AugmentConfig.none())
    batch = [ds[(i, 0)] for i in range(4)]
    photo, target, valid = (torch.stack([b[k] for b in batch]) for k in ("photo", "target", "valid"))
    torch.manual_seed(0)
    G, D = UNetGenerator(ngf=8, levels=5, input_size=32), PatchDiscriminator(ndf=8)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))

    def eval_l1():
        with torch.no_grad():
            return masked_l1(G.eval()(photo), target, valid).item()

    before = eval_l1()
    for _ in range(250):
        G.train()
        _step(G, D, D, opt_G, opt_D, photo, target, valid, 100.0)
    after = eval_l1()
    assert after < before / 8, (before, after)
    # What it learned has the right polarity: brighter = nearer, on a full-resolution frame.
    disp = predict_disparity(G, cache.rgb[0])
    d = cache.depth_mm[0].astype(np.float64)
    ok = d > 0
    assert np.corrcoef(disp[ok], 1.0 / d[ok])[0, 1] > 0.9


def _weights(path):
    return load_file(str(path))


def test_killed_run_resumes_to_the_same_weights(data, tmp_path):
    common = ["--data", str(data), "--steps", "8", "--ckpt-every", "3", "--val-every", "4", *TINY]
    a = _cli("train", "--out", str(tmp_path / "a"), *common, cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    # Same run, killed (SIGKILL, no clean-up) after step 5; the newest checkpoint is step 3.
    b = _cli("train", "--out", str(tmp_path / "b"), *common, "--workers", "1", cwd=tmp_path, env_extra={KILL_ENV: "5"})
    assert b.returncode == -signal.SIGKILL, b.stderr
    assert latest_checkpoint(tmp_path / "b").name == "step_00000003"
    assert not (tmp_path / "b" / "generator.safetensors").exists()
    refused = _cli("train", "--out", str(tmp_path / "b"), *common, cwd=tmp_path)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    b2 = _cli("train", "--out", str(tmp_path / "b"), *common, "--resume", cwd=tmp_path)
    assert b2.returncode == 0, b2.stderr
    assert "resuming from" in b2.stderr and "step 3" in b2.stderr
    wa, wb = _weights(tmp_path / "a" / "generator.safetensors"), _weights(tmp_path / "b" / "generator.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    da = _weights(tmp_path / "a" / "checkpoints" / "step_00000008" / "discriminator.safetensors")
    db = _weights(tmp_path / "b" / "checkpoints" / "step_00000008" / "discriminator.safetensors")
    assert all(torch.equal(da[k], db[k]) for k in da)
    # Not trivially equal: training moved the weights away from the step-3 checkpoint.
    w3 = _weights(tmp_path / "b" / "checkpoints" / "step_00000006" / "generator.safetensors")
    assert any(not torch.equal(w3[k], wb[k]) for k in wb)
    logs = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if r.get("event") == "val"] == [4, 8]  # validation ran and resumed


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    torch.manual_seed(0)
    G, D = UNetGenerator(ngf=2, levels=5), PatchDiscriminator(ndf=2)
    save_checkpoint(tmp_path, 1, G, D, {"config": {}})
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pybokeh.nets.checkpoint.torch.save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, G, D, {"config": {}})
    monkeypatch.undo()
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step_00000001"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_00000001"]
    G2 = UNetGenerator(ngf=2, levels=5)
    assert load_checkpoint(ckpt, G2, PatchDiscriminator(ndf=2))["step"] == 1
    assert all(torch.equal(G2.state_dict()[k], before[k]) for k in before)


def test_torchrun_two_gloo_processes_keep_replicas_identical(data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pybokeh.cli", "train", "--data", str(data), "--out", str(out), "--steps", "4",
           "--ckpt-every", "4", "--val-every", "4", *TINY]
    for attempt in range(2):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
        # --standalone binds a free port that another process on this shared machine may take
        # first; that is the launcher's race, not ours: retry once, then fail.  Likewise torch's
        # gloo teardown, which once aborted a rank after training had finished and written its
        # outputs ("terminate called without an active exception", CI of 2026-12-05).
        teardown = "done:" in run.stderr and "terminate called without an active exception" in run.stderr
        if run.returncode == 0 or not ("already in use" in run.stderr or teardown):
            break
        shutil.rmtree(out, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 process(es) on cpu" in run.stderr
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    replicas = [r for r in logs if r.get("event") == "replicas"]
    assert len(replicas) == 1 and replicas[0]["in_sync"]
    digests = replicas[0]["digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    G, _ = load_generator(out / "generator.safetensors")
    assert _params_digest(G) == digests[0]["generator"]
    # The replicas really trained (on different samples, averaged by DDP): weights left the init.
    torch.manual_seed(0)
    assert _params_digest(UNetGenerator(ngf=4, levels=5, input_size=32)) != digests[0]["generator"]


def test_cli_l1_only_train_then_eval_depth(data, tmp_path, capsys):
    out = tmp_path / "l1"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "3", "--l1-only", *TINY]) == 0
    ckpt = latest_checkpoint(out)
    assert ckpt.name == "step_00000003" and not (ckpt / "discriminator.safetensors").exists()
    capsys.readouterr()
    assert main(["eval-depth", "--weights", str(out), "--data", str(data), "--json", "--per-image"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mean"]["count"] == 2 and report["input_size"] == 32
    model, meta = load_generator(out / "generator.safetensors")
    assert meta["training"]["l1_only"] is True
    frames = [f for f in read_rgbd(data) if f.split == "eval"]
    direct = [score_frame(model, *f.load()) for f in frames]
    assert report["mean"]["abs_rel"] == pytest.approx(np.mean([m["abs_rel"] for m in direct]), rel=1e-9)
    assert [r["name"] for r in report["per_image"]] == [f.name for f in frames]
    assert main(["eval-depth", "--weights", str(out / "generator.safetensors"), "--data", str(data)]) == 0
    table = capsys.readouterr().out
    assert "abs_rel" in table and "ALL (mean over images)" in table and "scene_eval" in table
    assert main(["eval-depth", "--weights", str(tmp_path / "none.safetensors"), "--data", str(data)]) == 2
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "bad"), "--steps", "1", "--size", "48"]) == 2


def test_cli_train_with_synthetic_share_and_ssi_loss(data, tmp_path, capsys):
    cache = tmp_path / "synth_cache"
    args = ["train", "--data", str(data), "--steps", "4", "--synth-ratio", "0.5", "--synth-frames", "6",
            "--synth-cache", str(cache), "--lambda-l1", "10", "--lambda-ssi", "100", *TINY]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    pools = list(cache.glob("synth_6_0_64_*.npz"))  # 6 frames, seed 0, cached at 2 x 32 px
    assert len(pools) == 1
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "G_SSI" in r]
    assert len(steps) == 4 and all(np.isfinite(r["G_SSI"]) and np.isfinite(r["G_L1"]) for r in steps)
    _, meta = load_generator(tmp_path / "a" / "generator.safetensors")
    t = meta["training"]
    assert t["synth_ratio"] == 0.5 and t["synth_frames"] == 6 and t["lambda_ssi"] == 100.0
    assert "synthetic" not in " ".join(t["sources"])  # sources lists the real training sources only
    # The second run reuses the pool file and, with the same seed, trains to the same weights.
    mtime = pools[0].stat().st_mtime_ns
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert pools[0].stat().st_mtime_ns == mtime
    wa, wb = _weights(tmp_path / "a" / "generator.safetensors"), _weights(tmp_path / "b" / "generator.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "c"), "--synth-ratio", "1.0"]) == 2
    assert "synth_ratio" in capsys.readouterr().err
    # A table-top-only pool is another pool file, recorded in the weights' metadata.
    assert main([*args, "--out", str(tmp_path / "d"), "--synth-kinds", "tabletop=1"]) == 0
    assert len(list(cache.glob("synth_6_0_64_*.npz"))) == 2
    assert load_generator(tmp_path / "d" / "generator.safetensors")[1]["training"]["synth_kinds"] == "tabletop=1"
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "e"), "--synth-kinds", "tabletop=1,lake=2"]) == 2
    assert "synth_kinds" in capsys.readouterr().err


def test_cli_crop_aspect_sets_the_crop_ratio_range(data, tmp_path, capsys):
    out = tmp_path / "wide"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "1", "--l1-only",
                 "--crop-aspect", "1.7778", *TINY]) == 0
    ratio = json.loads((out / "config.json").read_text())["augment"]["ratio"]
    assert ratio == pytest.approx([1 / 1.7778, 1.7778])
    default = tmp_path / "default"
    assert main(["train", "--data", str(data), "--out", str(default), "--steps", "1", "--l1-only", *TINY]) == 0
    assert json.loads((default / "config.json").read_text())["augment"]["ratio"] == pytest.approx([3 / 4, 4 / 3])
    for bad in ("0.5", "inf", "nan"):
        capsys.readouterr()
        assert main(["train", "--data", str(data), "--out", str(tmp_path / f"bad{bad}"), "--steps", "1",
                     "--crop-aspect", bad, *TINY]) == 2
        err = capsys.readouterr().err
        assert "--crop-aspect" in err and err.count("\n") == 1
        assert not (tmp_path / f"bad{bad}").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_and_inference_match_cpu(data, tmp_path):
    out = tmp_path / "cuda"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "3", "--device", "cuda",
                 *TINY[:TINY.index("--threads")], "--no-progress"]) == 0
    model, _ = load_generator(out / "generator.safetensors")
    rgb, _ = [f for f in read_rgbd(data) if f.split == "eval"][0].load()
    on_cpu = predict_disparity(model, rgb)
    on_gpu = predict_disparity(model.cuda(), rgb)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3)


def test_ema_run_writes_the_weight_average_and_resumes_exactly(data, tmp_path):
    common = ["--data", str(data), "--steps", "6", "--ckpt-every", "1", "--keep-checkpoints", "10",
              "--val-every", "3", "--ema", "0.5", "--l1-only", *TINY]
    a = _cli("train", "--out", str(tmp_path / "a"), *common, cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    assert "EMA 0.5" in a.stderr
    final = _weights(tmp_path / "a" / "generator.safetensors")
    ckpts = tmp_path / "a" / "checkpoints"
    w6 = _weights(ckpts / "step_00000006" / "generator.safetensors")  # the trained weights of step 6
    ema5 = torch.load(ckpts / "step_00000005" / "train_state.pt", weights_only=True)["ema"]
    # The file holds the average: 0.5 * (average after step 5) + 0.5 * (weights of step 6).
    for k in final:
        assert torch.allclose(final[k], 0.5 * ema5[k] + 0.5 * w6[k], atol=1e-6), k
    assert any(not torch.equal(final[k], w6[k]) for k in final)
    # Killed after step 4 and resumed from checkpoint 4: the same average.
    b = _cli("train", "--out", str(tmp_path / "b"), *common, cwd=tmp_path, env_extra={KILL_ENV: "4"})
    assert b.returncode == -signal.SIGKILL, b.stderr
    b2 = _cli("train", "--out", str(tmp_path / "b"), *common, "--resume", cwd=tmp_path)
    assert b2.returncode == 0, b2.stderr
    wb = _weights(tmp_path / "b" / "generator.safetensors")
    assert all(torch.equal(final[k], wb[k]) for k in final)
    bad = _cli("train", "--out", str(tmp_path / "c"), *common[:-len(TINY) - 2], "--ema", "1", *TINY, cwd=tmp_path)
    assert bad.returncode == 2 and "ema" in bad.stderr and "Traceback" not in bad.stderr


def test_init_starts_from_a_generator_file_and_refuses_another_architecture(data, tmp_path):
    common = ["--data", str(data), "--val-every", "10", "--l1-only", *TINY]
    a = _cli("train", "--out", str(tmp_path / "a"), "--steps", "3", *common, cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    start = _weights(tmp_path / "a" / "generator.safetensors")
    # One step at a negligible learning rate: the weights stay those of the file (Adam moves each by ~lr).
    tiny_lr = ["--steps", "1", "--lr", "1e-12", "--seed", "5"]
    b = _cli("train", "--out", str(tmp_path / "b"), *tiny_lr, "--init", str(tmp_path / "a" / "generator.safetensors"),
             *common, cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    assert "generator initialised from" in b.stderr
    tuned = _weights(tmp_path / "b" / "generator.safetensors")
    assert all(torch.allclose(tuned[k], start[k], atol=1e-9) for k in start)
    c = _cli("train", "--out", str(tmp_path / "c"), *tiny_lr, *common, cwd=tmp_path)  # the same without --init
    fresh = _weights(tmp_path / "c" / "generator.safetensors")
    assert any(not torch.allclose(fresh[k], start[k], atol=1e-3) for k in start)
    # The packaged model (ngf 16, 128 px) into this 32-px ngf-4 run: one line naming --init.
    packaged = pathlib.Path(pybokeh.__file__).parent / "models" / "pix2pix_depth.safetensors"
    for init in (packaged, tmp_path / "missing.safetensors"):
        bad = _cli("train", "--out", str(tmp_path / "d"), *tiny_lr, "--init", str(init), *common, cwd=tmp_path)
        assert bad.returncode == 2 and str(init.name) in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) <= 3, bad.stderr
