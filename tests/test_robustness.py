"""Issue #6: bad input is one clear line, physics faults are contained, a signal never loses training,
runs are reproducible and checkpoints never run pickled code. CPU engine, a few worlds, few epochs."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.checkpoints import safe_load
from tasks.neuromechfly import NUM_OBS

ROOT = Path(__file__).resolve().parents[1]
CPU = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True"]
# a PPO epoch of 4 worlds x 8 control steps; episodes of 6 steps so that rewards get logged
SMALL = [*CPU, "num_envs=4", "task.env.episodeLength_s=0.006", "task.env.controlFrequencyInv=5",
         "train.params.config.horizon_length=8", "train.params.config.minibatch_size=32"]
NN = Path("runs") / "NeuroMechFly" / "nn"


def train_py(args, cwd, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def scalars(run_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(run_dir / "summaries"))
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


# ------------------------------------------------------------------ bad input


class Evil:
    """Unpickling this creates a file: proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def make_checkpoint(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pth"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "truncated":
        torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 1}, path)
        path.write_bytes(path.read_bytes()[:600])
    elif kind == "other_sizes":  # what a run of another task (10 observations, 3 actions) writes
        torch.save({"model": {"running_mean_std.running_mean": torch.zeros(10),
                              "a2c_network.mu.weight": torch.zeros(3, 64)}, "epoch": 1}, path)
    elif kind == "other_network":  # this task's sizes, another MLP (32 units before mu)
        torch.save({"model": {"running_mean_std.running_mean": torch.zeros(NUM_OBS),
                              "a2c_network.mu.weight": torch.zeros(42, 32)}, "epoch": 1}, path)
    elif kind == "pickled_code":
        torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil(tmp_path / "code_ran")}, path)
    return path


BAD_INPUT = [
    (["task=Humanoid"], "task=Humanoid"),
    (["task.env.nosuchkey=1"], "task.env.nosuchkey"),
    (["physics_engine=physx"], "physics_engine='physx'"),
    (["num_envs=-3"], "num_envs=-3"),
    (["num_envs=abc"], "num_envs='abc'"),
    (["num_envs=2.5"], "num_envs=2.5"),
    (["rl_device=foo"], "rl_device='foo'"),
    (["task.sim.dt=-0.0002"], "task.sim.dt=-0.0002"),
    (["task.sim.dt=fast"], "task.sim.dt='fast'"),
    (["task.env.controlFrequencyInv=0"], "task.env.controlFrequencyInv=0"),
    (["task.env.episodeLength_s=0"], "task.env.episodeLength_s=0"),
    (["task.env.commands.forwardSpeed=[20.0,10.0]"], "task.env.commands.forwardSpeed=[20.0, 10.0]"),
    (["task.env.commands.forwardSpeed=[-5.0,10.0]"], "task.env.commands.forwardSpeed=[-5.0, 10.0]"),
    (["task.env.commands.yawRate=[fast,1.0]"], "task.env.commands.yawRate=['fast', 1.0]"),
    (["task.env.commands.yawRate=1.0"], "task.env.commands.yawRate=1.0"),
    (["task.env.commands.standingShare=1.5"], "task.env.commands.standingShare=1.5"),
    (["task.env.rewards.scales.alive=high"], "task.env.rewards.scales.alive='high'"),
    (["task.env.gait.frequency=[3.3]"], "task.env.gait.frequency=[3.3]"),
    (["task.sim.mujoco.jacobian=diagonal"], "task.sim.mujoco.jacobian='diagonal'"),
    (["num_threads=-1"], "num_threads=-1"),
    (["pipeline=cpu"], "pipeline belongs to Isaac Gym's PhysX"),
    (["solver_type=0"], "solver_type belongs to Isaac Gym's PhysX"),
    (["+num_subscenes=2"], "num_subscenes belongs to Isaac Gym's PhysX"),
    (["force_render=False"], "force_render belongs to Isaac Gym's viewer"),
    (["task.env.clipActions=-1"], "task.env.clipActions=-1"),
    (["task.env.terminationUpright=2"], "task.env.terminationUpright=2"),
    (["task.sim.mujoco.iterations=0"], "task.sim.mujoco.iterations=0"),
    (["max_iterations=0"], "max_iterations=0"),
    (["seed=1.5"], "seed=1.5"),
    (["torch_deterministic=maybe"], "torch_deterministic='maybe'"),
    (["train.params.config.horizon_length=0"], "train.params.config.horizon_length=0"),
    (["train.params.config.gamma=1.5"], "train.params.config.gamma=1.5"),
    (["train.params.config.learning_rate=-1"], "train.params.config.learning_rate=-1"),
]
if not torch.cuda.is_available():
    BAD_INPUT.append((["sim_device=cuda:0"], "sim_device=cuda:0"))


def assert_one_line_error(result, names):
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and names in last, result.stderr[-2000:]
    return last


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory) -> dict:
    """train.py on every BAD_INPUT, all in one process (tests/train_many.py): what each run printed."""
    cwd = tmp_path_factory.mktemp("bad_input")
    cases = [[*SMALL, *args] for args, _ in BAD_INPUT]
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "train_many.py"), json.dumps(cases)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    return {tuple(args): subprocess.CompletedProcess(r["args"], r["returncode"], r["stdout"], r["stderr"])
            for (args, _), r in zip(BAD_INPUT, runs)} | {"runs_folder": any(r["runs_folder"] for r in runs)}


@pytest.mark.parametrize("args, names", BAD_INPUT, ids=[a[0] for a, _ in BAD_INPUT])
def test_bad_value_is_one_line_before_anything_is_built(bad_input_runs, args, names):
    result = bad_input_runs[tuple(args)]
    last = assert_one_line_error(result, names)
    assert "(allowed:" in last or "use " in last  # says what would be accepted
    assert not bad_input_runs["runs_folder"]
    assert "build mlp" not in result.stdout  # rl_games never started


@pytest.mark.parametrize("args, names", [BAD_INPUT[0], BAD_INPUT[3]], ids=["task=Humanoid", "num_envs=-3"])
def test_bad_value_on_the_command_line_is_one_line(tmp_path, args, names):
    # the same as above through the interpreter's own exit: one line on stderr, a non-zero status, nothing written
    result = train_py([*SMALL, *args], tmp_path)
    assert_one_line_error(result, names)
    assert not (tmp_path / "runs").exists()


BAD_CHECKPOINTS = [("missing", "does not exist"), ("folder", "is not a file"), ("text", "corrupt or not a checkpoint"),
                   ("truncated", "corrupt or not a checkpoint"),
                   ("other_sizes", "trained for 10 observations and 3 actions"),
                   ("pickled_code", "refused, since loading it could run code")]
# play and resume share the check: play is covered by a few kinds
CHECKPOINT_CASES = [(kind, names, "resume") for kind, names in BAD_CHECKPOINTS] + [
    (kind, names, "play") for kind, names in BAD_CHECKPOINTS if kind in ("missing", "other_sizes", "pickled_code")]


@pytest.mark.parametrize("kind, names, mode", CHECKPOINT_CASES, ids=[f"{m}-{k}" for k, _, m in CHECKPOINT_CASES])
def test_bad_checkpoint_is_one_line(tmp_path, kind, names, mode):
    path = make_checkpoint(tmp_path, kind)
    result = train_py([*SMALL, f"checkpoint={path}", *(["test=True"] if mode == "play" else [])], tmp_path)
    last = assert_one_line_error(result, names)
    assert f"checkpoint={path}" in last
    assert not (tmp_path / "code_ran").exists()
    assert not (tmp_path / "runs").exists()


def test_checkpoint_of_another_network_is_one_line(tmp_path):
    path = make_checkpoint(tmp_path, "other_network")
    result = train_py([*SMALL, f"checkpoint={path}", "test=True"], tmp_path)
    assert "does not fit this network" in assert_one_line_error(result, f"checkpoint={path}")


def test_rl_games_own_loader_refuses_pickled_code(tmp_path):
    """rl_games' restore paths (training and play) call torch_ext.load_checkpoint: it must go through
    our weights_only loader, not rl_games' weights_only=False one."""
    from rl_games.algos_torch import torch_ext

    from runner.rl_games_glue import patch_rl_games_checkpoint_io

    patch_rl_games_checkpoint_io()
    with pytest.raises(Exception, match="Weights only load failed"):
        torch_ext.load_checkpoint(str(make_checkpoint(tmp_path, "pickled_code")))
    assert not (tmp_path / "code_ran").exists()


# ------------------------------------------------------------------ physics faults


@pytest.mark.parametrize("poison", ["nan_qpos", "exploded_qvel"])
def test_faulted_world_is_reset_counted_and_hidden_from_the_policy(poison, make_cpu_task):
    # zero actions hold the standing pose (not the walking reference): only the poisoned world resets
    env = make_cpu_task("num_envs=4", "task.env.gait.reference=False")
    actions = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(3):
        env.step(actions)
    world = torch.tensor([1])
    qpos, qvel = env.physics.qpos[world].clone(), env.physics.qvel[world].clone()
    if poison == "nan_qpos":
        qpos[:] = math.nan
    else:
        qvel[:] = 1e12
    faults_before = int(env.counters.faults["all"])
    env.physics.reset_worlds(world, qpos, qvel)
    obs, rew, reset, extras = env.step(actions)
    assert torch.isfinite(obs["obs"]).all() and torch.isfinite(rew).all()
    assert reset.tolist() == [0, 1, 0, 0] and env.progress_buf.tolist() == [4, 0, 4, 4]
    assert int(extras["physics_faults"]) == faults_before + 1
    assert rew[1] == 0.0
    assert torch.isfinite(env.physics.qpos[1]).all() and env.physics.qvel[1].abs().max() < 1e6  # reset state
    obs, rew, reset, extras = env.step(actions)  # and it simulates on normally
    assert torch.isfinite(obs["obs"]).all() and int(extras["physics_faults"]) == faults_before + 1


DIVERGING_RUN = """
import math, runpy, sys
import torch
sys.path.insert(0, {root!r})
from tasks import isaacgym_task_map
from tasks.neuromechfly import NeuroMechFly

class DivergingFly(NeuroMechFly):
    steps = 0

    def physics_step(self):
        super().physics_step()
        DivergingFly.steps += 1
        if DivergingFly.steps % 7 == 0:  # worlds 0 and 2 report a NaN state, as a diverged world does
            self.physics.qpos[[0, 2]] = math.nan

    def step(self, actions):
        obs, rew, reset, extras = super().step(actions)
        if not (torch.isfinite(obs["obs"]).all() and torch.isfinite(rew).all()):
            raise SystemExit("non-finite observation or reward reached the policy")
        return obs, rew, reset, extras

isaacgym_task_map["NeuroMechFly"] = DivergingFly
sys.argv[0] = {root!r} + "/train.py"
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("control steps", DivergingFly.steps)
"""


def test_training_survives_worlds_that_diverge(tmp_path):
    """A short PPO run (train.py's main, through a wrapper that swaps in a task whose worlds 0 and 2
    diverge every 7th control step): the policy never sees a NaN, losses stay finite, the faults are
    logged and the run ends with a checkpoint."""
    wrapper = tmp_path / "diverging_train.py"
    wrapper.write_text(DIVERGING_RUN.format(root=str(ROOT)))
    result = subprocess.run([sys.executable, str(wrapper), *SMALL, "max_iterations=3", "seed=1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "control steps 24" in result.stdout
    run_dir = tmp_path / "runs" / "NeuroMechFly"
    assert scalars(run_dir, "Task/physics_faults")[-1] == 6  # 3 poisonings x 2 worlds
    for tag in ("losses/a_loss", "losses/c_loss", "rewards/iter"):
        values = scalars(run_dir, tag)
        assert values and all(math.isfinite(v) for v in values), tag
    state = safe_load(next((run_dir / "nn").glob("last_*_ep_3_*.pth")))
    assert all(torch.isfinite(t).all() for t in state["model"].values())


# ------------------------------------------------------------------ signals and resume


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_that_resumes_where_it_stopped(tmp_path, sig):
    stdout = tmp_path / "stdout.txt"
    with open(stdout, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *SMALL, "max_iterations=10000", "seed=2"],
                                cwd=tmp_path, stdout=out, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 240
        while "epoch: 3/" not in stdout.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert "Traceback" not in stderr
    saved = list((tmp_path / NN).glob("last_NeuroMechFly_ep_*_interrupted.pth"))
    assert len(saved) == 1 and f"saved {NN / saved[0].name}" in stderr.strip().splitlines()[-1]
    stopped = safe_load(saved[0])
    epoch = stopped["epoch"]
    assert epoch >= 3 and stopped["frame"] == epoch * 32 and saved[0].name.endswith(f"_ep_{epoch}_interrupted.pth")

    if sig == signal.SIGINT:
        return  # the resume below does not depend on which signal stopped the run: once (SIGTERM) is enough
    # Resume for 2 more epochs. A constant schedule and another configured learning rate make the
    # check exact: the resumed run must keep the checkpoint's rate, not the config's.
    result = train_py([*SMALL, f"checkpoint={saved[0]}", f"max_iterations={epoch + 2}", "seed=2",
                       "train.params.config.lr_schedule=constant", "train.params.config.learning_rate=1e-7"],
                      tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"epoch: {epoch + 1}/{epoch + 2}" in result.stdout and f"epoch: 1/{epoch + 2}" not in result.stdout
    resumed = safe_load(next((tmp_path / NN).glob(f"last_NeuroMechFly_ep_{epoch + 2}_rew_*.pth")))
    assert resumed["epoch"] == epoch + 2 and resumed["frame"] == (epoch + 2) * 32
    assert resumed["last_lr"] == stopped["last_lr"] != 1e-7
    # optimiser: Adam's step count goes on (4 worlds x 8 steps = one minibatch, 5 mini-epochs per epoch)
    steps = lambda s: int(s["optimizer"]["state"][0]["step"])  # noqa: E731
    assert steps(stopped) == epoch * 5 and steps(resumed) == (epoch + 2) * 5
    # observation normaliser: its count goes on from the checkpoint's, not from scratch
    count = lambda s: float(s["model"]["running_mean_std.count"])  # noqa: E731
    assert count(resumed) > count(stopped) + 2 * 32 - 1


# ------------------------------------------------------------------ reproducibility


def test_seeded_deterministic_runs_are_identical(tmp_path):
    runs = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        result = train_py([*SMALL, "max_iterations=3", "seed=7", "torch_deterministic=True"], cwd)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        checkpoint = next((cwd / NN).glob("last_NeuroMechFly_ep_3_*.pth"))
        runs.append((checkpoint.name, safe_load(checkpoint), scalars(cwd / "runs" / "NeuroMechFly", "rewards/iter")))
    (name_a, a, rew_a), (name_b, b, rew_b) = runs
    assert name_a == name_b and len(rew_a) >= 2 and rew_a == rew_b
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for i, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][i][key]), (i, key)
