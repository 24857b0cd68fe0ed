"""The fly driven by an exported ONNX policy (scripts/export_onnx.py) in plain MuJoCo: one MjModel,
one MjData and the caller's own mj_step loop, the way MuJoCo Playground and mjlab users run a policy.

    model = load_fly()                            # the fly on flat ground (fly/model.py)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("stand").id)
    controller = OnnxFlyController(model, "policy.onnx", speed=20.0, yaw_rate=0.0)
    while data.time < 3.0:
        data.ctrl[:] = controller(data)          # once per control step
        for _ in range(controller.substeps):
            mujoco.mj_step(model, data)

Nothing about the observation or the action mapping is re-derived here. `OnnxFlyController` is the
NeuroMechFly task itself for one world, whose physics engine (`MjDataEngine`) is a view of the
caller's MjData instead of worlds of its own: the task's FlyStateReader (state.py) reads that MjData,
tasks/neuromechfly/observations.py computes the observation, the gait reference (fly/gait.py)
advances one control step per call, and the task's `pre_physics_step` maps the actions to joint
targets. The task config (gait, observation scales, control rate, sim dt, solver) is the one the
policy was trained with, read from the ONNX file's metadata; the controller sets the model's
timestep and solver settings to it (as the task's engine does), and the caller steps `substeps`
times per call. The controller never writes into the MjData: it returns the whole ctrl vector.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import mujoco
import numpy as np
import torch
import yaml

from physics import PhysicsEngine, SimParams
from tasks.neuromechfly import NeuroMechFly, terminations

TASK = "NeuroMechFly"
TASK_YAML = Path(__file__).resolve().parents[1] / "cfg" / "task" / "NeuroMechFly.yaml"


class MjDataEngine(PhysicsEngine):
    """One world whose state is a caller's MjData: `qpos`, `qvel` and `sensordata` are torch views of
    the MjData bound last (`bind`), `ctrl` a buffer of the engine's own. It does not step: the caller
    runs mj_step. Until the first `bind` it views a scratch MjData at the model's first keyframe (as the
    task's CPU engine starts), where the task measures its standing height."""

    name = "mjdata"
    mujoco_c = True  # the caller steps it with mj_step

    def __init__(self, model: mujoco.MjModel, params: SimParams):
        super().__init__(model, 1, torch.device("cpu"), params)  # sets the model's timestep and solver
        self.ctrl = torch.zeros((1, model.nu), dtype=torch.float64)
        scratch = mujoco.MjData(model)
        if model.nkey:
            mujoco.mj_resetDataKeyframe(model, scratch, 0)
        mujoco.mj_forward(model, scratch)
        self.bind(scratch)

    def bind(self, data: mujoco.MjData) -> None:
        """View `data` (no copies); the ctrl buffer starts from its controls."""
        if data.qpos.shape != (self.nq,) or data.ctrl.shape != (self.nu,):
            raise ValueError(f"MjData with nq={data.qpos.shape[0]}, nu={data.ctrl.shape[0]} is not of this model "
                             f"(allowed: mujoco.MjData(model) of the model given, nq={self.nq}, nu={self.nu})")
        self.data = data
        self.qpos = torch.from_numpy(data.qpos).unsqueeze(0)
        self.qvel = torch.from_numpy(data.qvel).unsqueeze(0)
        self.sensordata = torch.from_numpy(data.sensordata).unsqueeze(0)
        self.ctrl[0] = torch.from_numpy(data.ctrl)

    def step(self) -> None:
        raise RuntimeError("MjDataEngine does not step: the caller runs mujoco.mj_step on its MjData")

    def _after_reset(self, env_ids: torch.Tensor) -> None:
        pass  # only the scratch MjData is ever reset (by the task's constructor)


def read_metadata(onnx_path: str | Path):
    """An onnxruntime session of the file (one thread: batch 1 is faster so) and its metadata."""
    import onnxruntime as ort

    path = Path(onnx_path)
    if not path.is_file():
        raise ValueError(f"onnx={onnx_path} does not exist (allowed: a file written by scripts/export_onnx.py)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types, several lines long
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"onnx={onnx_path} is not a loadable ONNX model ({reason})") from None
    return session, dict(session.get_modelmeta().custom_metadata_map)


class OnnxFlyController(NeuroMechFly):
    """`controller(data)` -> the ctrl vector (model.nu,) for the next control step of `data`.

    Call it once per control step, then step the MjData `substeps` times: each call after the first
    advances the gait reference and the velocity window by one control step (`dt`), as the task's
    `post_physics_step` does, then computes the observation and runs the policy. `speed` (mm/s) and
    `yaw_rate` (rad/s, positive to the left) are the command; `set_command` changes it. `restart()`
    starts a new episode of the controller (gait from standing, no motion history) for an MjData the
    caller has put back to standing. `task_config` overrides the task config carried by the file."""

    def __init__(self, model: mujoco.MjModel, onnx_path: str | Path, speed: float = 20.0, yaw_rate: float = 0.0,
                 task_config: dict | None = None):
        self.session, self.metadata = read_metadata(onnx_path)
        if task_config is None:
            if self.metadata.get("task") != TASK or "task_config" not in self.metadata:
                raise ValueError(f"onnx={onnx_path} is a policy of task {self.metadata.get('task')!r}, not {TASK} "
                                 "(allowed: an export of a NeuroMechFly checkpoint)")
            task_config = json.loads(self.metadata["task_config"])
        cfg = copy.deepcopy(task_config)
        cfg["env"]["numEnvs"] = 1
        # the caller's model is the world: its own ground, no per-world randomisation (an export from before
        # these sections existed gets the current defaults)
        defaults = yaml.safe_load(TASK_YAML.read_text())
        for key in ("terrain", "randomization"):
            cfg["env"].setdefault(key, copy.deepcopy(defaults["env"][key]))
        # it is stepped by MuJoCo C: its iteration cap (an export from before the key existed gets today's)
        cfg["sim"]["mujoco"].setdefault("c_iterations", defaults["sim"]["mujoco"]["c_iterations"])
        cfg["env"]["terrain"]["type"] = "flat"
        cfg["env"]["randomization"]["enabled"] = False
        cfg["env"]["asymmetricCritic"] = False  # the policy's observation is all it needs
        self._mj_model = model
        super().__init__(cfg, "cpu", "cpu", 0, True)
        self.input_name = self.session.get_inputs()[0].name
        got_obs, got_act = self.session.get_inputs()[0].shape[-1], self.session.get_outputs()[0].shape[-1]
        if (got_obs, got_act) != (self.num_obs, self.num_actions):
            raise ValueError(f"onnx={onnx_path} takes {got_obs} observations and gives {got_act} actions "
                             f"(allowed: a policy of the current {TASK} task, {self.num_obs} and {self.num_actions})")
        self.command.hold()
        self.set_command(speed, yaw_rate)
        self._started = False

    def make_engine(self, model: mujoco.MjModel) -> PhysicsEngine:
        """The task on the caller's model and MjData instead of worlds of its own."""
        return MjDataEngine(self._mj_model, self.cfg_t.sim)

    @property
    def substeps(self) -> int:
        """mj_step calls per control step (the task's controlFrequencyInv)."""
        return self.physics.params.substeps

    def set_command(self, speed: float, yaw_rate: float = 0.0) -> None:
        self.command.set(None, torch.tensor(float(speed)), torch.tensor(float(yaw_rate)))
        self.gait.set_command(self.command.speed, self.command.yaw_rate)

    def restart(self) -> None:
        """A new episode for the controller, as the task's reset_idx starts one (without touching physics)."""
        self.reset_episode_state(torch.arange(self.num_envs, device=self.device))
        self._started = False

    @torch.no_grad()
    def observe(self, data: mujoco.MjData) -> torch.Tensor:
        """(1, num_obs): the observation of `data` now, as the task hands it to the policy. Each call
        after the first counts as one control step later."""
        self.physics.bind(data)
        if self._started:  # post_physics_step, without rewards, terminations and resets
            self.progress_buf += 1
            self.advance_state()
        else:  # just after a reset: no motion measured yet
            self.reader.read()
            self._fill_step_context()
            self._started = True
        self.compute_observations()
        return torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs)  # as VecTask.step returns it

    @torch.no_grad()
    def __call__(self, data: mujoco.MjData) -> np.ndarray:
        obs = self.observe(data)
        actions = self.session.run(None, {self.input_name: obs.numpy()})[0]
        actions = torch.from_numpy(actions).clamp(-self.clip_actions, self.clip_actions)  # as VecTask.step
        self.pre_physics_step(actions)  # the task's action -> joint target mapping, into the engine's ctrl
        return self.physics.ctrl[0].numpy().copy()

    def fallen(self) -> bool:
        """The task's fall test on the state last observed (thorax too low, or body tipped over)."""
        s, c = self.state, self.cfg_t
        return bool((terminations.fell(s, c.termination_height) | terminations.flipped(s, c.termination_upright))[0])
