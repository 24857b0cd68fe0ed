"""The ONNX export of a policy (scripts/export_onnx.py) and the fly driven from it in plain MuJoCo
(analysis/onnx_policy.py, scripts/drive_onnx.py), on the checkpoint of a tiny CPU training run."""
import re
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")  # torch.onnx's dynamo exporter

from fly import NUM_DOF, load_fly  # noqa: E402
from runner.checkpoints import check_checkpoint  # noqa: E402
from runner.config import to_dict  # noqa: E402
from tasks.neuromechfly import NUM_OBS, observations  # noqa: E402

from .conftest import compose_config, policy_actor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True", "num_envs=4", "max_iterations=2",
        "task.env.episodeLength_s=0.03", "task.env.controlFrequencyInv=5", "train.params.config.horizon_length=8",
        "train.params.config.save_best_after=0"]
# training-only or random ops that must not be in an inference graph
FORBIDDEN_OPS = {"Dropout", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                 "Bernoulli", "BatchNormalization"}


def run_script(name, *args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A checkpoint of the current task from two PPO epochs on the CPU, and its run folder."""
    cwd = tmp_path_factory.mktemp("onnx")
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *TINY], cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoints = sorted((cwd / "runs" / "NeuroMechFly" / "nn").glob("*.pth"))
    assert checkpoints, "the tiny run wrote no checkpoint"
    return cwd, checkpoints[-1]


@pytest.fixture(scope="module")
def exported(run_dir):
    cwd, checkpoint = run_dir
    out = cwd / "policy.onnx"
    result = run_script("export_onnx.py", "--checkpoint", checkpoint, "--out", out, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return checkpoint, out, result.stdout


@pytest.fixture(scope="module")
def actor(exported):
    """The torch policy, built as evaluate.py builds it (analysis.evaluation.PolicyActor)."""
    checkpoint, _, _ = exported
    cfg = yaml.safe_load((checkpoint.parent.parent / "config.yaml").read_text())
    state = check_checkpoint(str(checkpoint), NUM_OBS, NUM_DOF)
    return policy_actor(cfg["train"]["params"], state, NUM_OBS, NUM_DOF)


@pytest.fixture(scope="module")
def session(exported):
    return ort.InferenceSession(str(exported[1]), providers=["CPUExecutionProvider"])


def run_onnx(session, obs) -> np.ndarray:
    obs = obs.numpy() if isinstance(obs, torch.Tensor) else obs
    return session.run(["actions"], {"obs": obs.astype(np.float32)})[0]


def test_export_writes_a_checked_inference_graph(exported):
    _, out, stdout = exported
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert not ops & FORBIDDEN_OPS, ops
    assert "Clip" in ops and ops & {"Gemm", "MatMul"}  # the observation and action clips, the MLP
    (inp,), (outp,) = model.graph.input, model.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim]
    assert inp.name == "obs" and outp.name == "actions"
    assert isinstance(in_dims[0], str) and in_dims[1] == NUM_OBS  # symbolic batch
    assert out_dims[0] == in_dims[0] and out_dims[1] == NUM_DOF
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["task"] == "NeuroMechFly" and int(meta["num_obs"]) == NUM_OBS and int(meta["num_actions"]) == NUM_DOF
    error = float(re.search(r"max abs error (\S+)", stdout).group(1))
    assert error <= 1e-5, stdout
    assert "wrote" in stdout


def test_onnx_matches_torch_policy_on_task_observations(make_cpu_task, actor, session):
    env = make_cpu_task("num_envs=4", "task.env.controlFrequencyInv=5")
    obs = env.reset()["obs"]
    recorded = []
    for _ in range(6):
        obs = env.step(actor(obs))[0]["obs"]
        recorded.append(obs.clone())
    obs = torch.cat(recorded)
    assert obs.abs().max() > 0.1  # real observations, not a blank buffer
    error = np.abs(run_onnx(session, obs) - actor(obs).numpy()).max()
    assert error <= 1e-5


def test_actions_stay_in_range_for_extreme_observations(session):
    rng = np.random.default_rng(0)
    obs = np.concatenate([np.full((1, NUM_OBS), 1e3), np.full((1, NUM_OBS), -1e3),
                          rng.choice([-1e3, 1e3], size=(6, NUM_OBS)), 1e6 * rng.standard_normal((4, NUM_OBS))])
    actions = run_onnx(session, obs)
    assert actions.shape == (len(obs), NUM_DOF)
    assert np.isfinite(actions).all() and actions.min() >= -1.0 and actions.max() <= 1.0


def test_batch_dimension_is_dynamic(session):
    obs = torch.randn((7, NUM_OBS), generator=torch.Generator().manual_seed(1))
    batch7 = run_onnx(session, obs)
    batch1 = np.concatenate([run_onnx(session, obs[i:i + 1]) for i in range(7)])
    assert batch7.shape == (7, NUM_DOF) and batch1.shape == (7, NUM_DOF)
    assert np.abs(batch7 - batch1).max() <= 1e-6


@pytest.mark.parametrize("case", ["missing checkpoint", "no config", "unfit config"])
def test_bad_input_is_one_error_line(run_dir, tmp_path, case):
    cwd, checkpoint = run_dir
    args = ["--checkpoint", tmp_path / "nope.pth", "--out", tmp_path / "p.onnx"]
    named = "nope.pth"
    if case == "no config":  # a checkpoint alone: no <stem>.yaml beside it, no ../config.yaml
        lone = tmp_path / "lone" / "policy.pth"
        lone.parent.mkdir()
        lone.write_bytes(checkpoint.read_bytes())
        args[1], named = lone, "--config"
    elif case == "unfit config":  # another network than the checkpoint's
        cfg = yaml.safe_load((checkpoint.parent.parent / "config.yaml").read_text())
        cfg["train"]["params"]["network"]["mlp"]["units"] = [32, 16]
        (tmp_path / "small.yaml").write_text(yaml.safe_dump(cfg))
        args[1], named = checkpoint, "does not fit"
        args += ["--config", tmp_path / "small.yaml"]
    result = run_script("export_onnx.py", *args, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert not (tmp_path / "p.onnx").exists()


def test_controller_sees_what_the_task_sees(make_cpu_task, exported, session):
    """OnnxFlyController on a plain MjData gives the task's observations and joint targets, step for step."""
    from analysis.onnx_policy import OnnxFlyController

    overrides = ("num_envs=1", "task.env.controlFrequencyInv=5", "task.env.episodeLength_s=1.0",
                 "task.env.terminationHeight=0.0", "task.env.terminationUpright=-1.0")  # no resets in between
    env = make_cpu_task(*overrides)
    env.command.hold()
    env.command.set(None, torch.tensor(15.0), torch.tensor(0.5))
    env.gait.set_command(env.command.speed, env.command.yaw_rate)
    observations.OBSERVATIONS.compute(env, env.obs_buf)
    task_cfg = to_dict(compose_config("task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", *overrides).task)
    model = load_fly(adhesion=False)  # the model the task's engine compiled
    controller = OnnxFlyController(model, exported[1], speed=15.0, yaw_rate=0.5, task_config=task_cfg)
    assert controller.substeps == 5 and model.opt.timestep == pytest.approx(env.cfg_t.sim.dt)
    controller.gait.phase.copy_(env.gait.phase)  # the same random start of the gait clock
    world = env.physics.world_data(0)
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.ctrl[:] = world.qpos, world.qvel, world.ctrl
    obs = env.reset()["obs"]
    for _ in range(8):
        ctrl = controller(data)
        assert torch.equal(controller.obs_buf.clamp(-controller.clip_obs, controller.clip_obs), obs)
        obs = env.step(torch.from_numpy(run_onnx(session, obs)))[0]["obs"]
        np.testing.assert_allclose(ctrl, env.physics._ctrl[0], atol=1e-6)
        data.ctrl[:] = ctrl
        for _ in range(controller.substeps):
            mujoco.mj_step(model, data)
    np.testing.assert_allclose(data.qpos, world.qpos, atol=1e-6)


def test_drive_onnx_walks_and_prints_the_distance(exported, tmp_path):
    result = run_script("drive_onnx.py", "--onnx", exported[1], "--seconds", "0.1", "--speed", "15", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    line = r"distance walked: \d+\.\d mm .* in 0\.10 s; mean forward speed -?\d+\.\d mm/s"
    assert re.search(line, result.stdout), result.stdout
    bad = run_script("drive_onnx.py", "--onnx", tmp_path / "missing.onnx", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: onnx=") and len(bad.stderr.splitlines()) == 1
