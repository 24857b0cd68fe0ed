"""IsaacGymEnvs' Ant on MuJoCo: run toward a target 1000 m ahead, 8 joint torques, 60 observations.

This class wires the parts: config.py (every YAML key, checked once), state.py (model tables and
measurements, the foot sensors), observations.py, rewards.py, terminations.py. All per-step work is
batched torch on the rl device; the physics engine is whichever `physics_engine` names (physics/).
Units: m, kg, s, rad.

As in IsaacGymEnvs: actions x powerScale drive the 8 motors (gear 15 N m), in DOF order; resets put
the torso at the start pose with the joints at their start angles plus U(-0.2, 0.2) rad (clamped to
their ranges) and speeds U(-0.1, 0.1) rad/s. Unlike IsaacGymEnvs, whose Ant resets a world at the
start of the step after it ended (so one action is spent on a fallen ant), a world is reset in the
step it ends and its first observation returned at once, as the project's VecTask does.
"""
from __future__ import annotations

import torch

from physics import AssetError, dof_names, load_mjcf, make_engine
from tasks.base.counters import EndCounters
from tasks.base.vec_task import VecTask

from . import observations, terminations
from .config import AntConfig, parse
from .rewards import REWARDS, total
from .state import AntModelInfo, AntStateReader

NUM_ACTIONS = 8
TARGET = (1000.0, 0.0, 0.0)  # m, on the floor ahead of every world's start
DOF_POS_NOISE = 0.2  # rad
DOF_VEL_NOISE = 0.1  # rad/s


def load_ant(cfg: AntConfig):
    """The ant model with the task's floor friction and gravity."""
    def edit(spec):
        floor = spec.geom("floor")
        if floor is None:
            raise AssetError("the ant model has no geom named floor")
        floor.friction = [cfg.static_friction, floor.friction[1], floor.friction[2]]
        spec.option.gravity = list(cfg.gravity)

    return load_mjcf(cfg.asset_file, edit=edit)


class Ant(VecTask):
    parse_config = staticmethod(parse)

    def __init__(self, cfg, rl_device, sim_device, graphics_device_id, headless,
                 virtual_screen_capture=False, force_render=False):
        self.cfg = cfg
        self.cfg_t: AntConfig = self.parse_config(cfg)
        cfg["env"]["numObservations"] = observations.NUM_OBS
        cfg["env"]["numActions"] = NUM_ACTIONS
        super().__init__(cfg, rl_device, sim_device, graphics_device_id, headless, virtual_screen_capture, force_render)
        self.max_episode_length = self.cfg_t.episode_length
        self._init_buffers()
        self._log_resets = False  # the first reset ends no episode
        self.reset_idx(torch.arange(self.num_envs, device=self.device))
        self._log_resets = True
        self.reset_buf.zero_()
        self._measure()
        observations.OBSERVATIONS.compute(self, self.obs_buf)

    # ------------------------------------------------------------ setup

    def create_sim(self) -> None:
        model = load_ant(self.cfg_t)
        self.info = AntModelInfo.from_model(model)
        if len(self.info.dof_names) != NUM_ACTIONS or len(self.info.feet) != 4:
            raise AssetError(f"the ant model has {len(self.info.dof_names)} hinge joints and {len(self.info.feet)} "
                             f"feet (expected {NUM_ACTIONS} and 4)")
        self.physics = make_engine(self.cfg.get("physics_engine") or None, model, self.num_envs, self.sim_device,
                                   self.cfg_t.sim)
        self.dt = self.physics.control_dt

    def _init_buffers(self) -> None:
        n, dev, info = self.num_envs, self.device, self.info
        as_t = lambda a, dtype=torch.float32: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
        self.dof_lower, self.dof_upper = as_t(info.dof_lower), as_t(info.dof_upper)
        self.start_qpos = as_t(info.start_qpos)
        self.qpos_adr, self.dof_adr = as_t(info.qpos_adr, torch.long), as_t(info.dof_adr, torch.long)
        self.start_dof_pos = self.start_qpos[self.qpos_adr]
        self.actuator_ids = torch.as_tensor(info.actuator_ids, dtype=torch.long, device=self.physics.device)
        self.target = as_t(TARGET).expand(n, 3)
        start_potential = observations.potential(self.start_qpos[None, 0:3], self.target[:1], self.dt)
        self.potentials = start_potential.expand(n).clone()
        self.prev_potentials = self.potentials.clone()
        self.actions = torch.zeros((n, self.num_actions), device=dev)
        self.reader = AntStateReader(self.physics, info, dev)
        self.state = self.reader.s
        self.episode_sums = {k: torch.zeros(n, device=dev) for k in [*REWARDS, "death", "forward_velocity"]}
        self.counters = EndCounters(dev, dof_names(self.physics.model))

    # ------------------------------------------------------------ step

    def pre_physics_step(self, actions: torch.Tensor) -> None:
        self.actions.copy_(actions)
        self.physics.set_ctrl((actions * self.cfg_t.power_scale).to(self.physics.device), self.actuator_ids)

    def physics_step(self) -> None:
        self.physics.step()

    def _measure(self) -> None:
        """Read the engine into `self.state`, with what observations and rewards derive from it."""
        s = self.reader.read()
        observations.fill_derived(s, self.target)
        s.actions = self.actions
        s.dof_pos_scaled = observations.dof_pos_scaled(self)
        s.potentials, s.prev_potentials = self.potentials, self.prev_potentials

    def post_physics_step(self) -> None:
        self.progress_buf += 1
        self._measure()
        s = self.state
        self.prev_potentials.copy_(self.potentials)
        self.potentials.copy_(observations.potential(s.root_pos, self.target, self.dt))
        observations.OBSERVATIONS.compute(self, self.obs_buf)
        self._compute_reward_and_terminations()
        self.extras["true_objective"] = s.lin_vel[:, 0].clone()  # IsaacGymEnvs' PBT objective: speed along x
        env_ids = self.reset_buf.nonzero(as_tuple=False).flatten()
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
            self._measure()
            observations.OBSERVATIONS.compute(self, self.obs_buf)

    def _compute_reward_and_terminations(self) -> None:
        s, c = self.state, self.cfg_t
        faulted = terminations.faulted(s)
        fell = terminations.fell(s, c.termination_height) & ~faulted
        timeout = terminations.timed_out(self.progress_buf, self.max_episode_length)
        terms = {name: fn(s, c.rewards) for name, fn in REWARDS.items()}
        self.rew_buf[:] = torch.where(faulted, 0.0, total(terms, fell, c.rewards.death_cost))
        live = (~fell & ~faulted).float()
        for name, value in terms.items():
            self.episode_sums[name] += value * live
        self.episode_sums["death"] += fell.float() * c.rewards.death_cost
        self.episode_sums["forward_velocity"] += s.lin_vel[:, 0] * (~faulted).float()
        self.counters.end_episodes(self, s.faults, fell, timeout, s.fault_dofs)

    # ------------------------------------------------------------ reset

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        k = len(env_ids)
        if k == 0:
            return
        if self._log_resets:
            self._log_episodes(env_ids)
        dev = self.device
        qpos = self.start_qpos.repeat(k, 1)
        noise = (torch.rand((k, self.num_actions), device=dev) * 2 - 1) * DOF_POS_NOISE
        qpos[:, self.qpos_adr] = torch.clamp(self.start_dof_pos + noise, self.dof_lower, self.dof_upper)
        qvel = torch.zeros((k, self.physics.nv), device=dev)
        qvel[:, self.dof_adr] = (torch.rand((k, self.num_actions), device=dev) * 2 - 1) * DOF_VEL_NOISE
        sim = self.physics.device
        self.physics.reset_worlds(env_ids.to(sim), qpos.to(sim), qvel.to(sim))
        start = observations.potential(self.start_qpos[None, 0:3], self.target[:1], self.dt)
        self.potentials[env_ids] = start
        self.prev_potentials[env_ids] = start
        self.actions[env_ids] = 0.0
        self.progress_buf[env_ids] = 0

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Means over the episodes that end now, for TensorBoard (extras["episode"]): each reward term's
        sum over the episode, the torso's mean speed along x (toward the target) and the length."""
        steps = self.progress_buf[env_ids].float().clamp_min(1.0)
        episode = {f"rew_{k}": self.episode_sums[k][env_ids].mean() for k in [*REWARDS, "death"]}
        episode["forward_velocity_m_s"] = (self.episode_sums["forward_velocity"][env_ids] / steps).mean()
        episode["length_steps"] = steps.mean()
        for v in self.episode_sums.values():
            v[env_ids] = 0.0
        self.extras["episode"] = episode
