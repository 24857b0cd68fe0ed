"""NeuroMechFly locomotion: walk at a commanded forward speed and yaw rate (or stand still) with 42
leg joint position targets, as residuals on a gait reference that steps like a fly.

This class wires the parts, each in its own module: config.py (every YAML key, checked once),
commands.py, state.py (measurements), observations.py, rewards.py, terminations.py, and fly/gait.py
(the reference). All per-step work is batched torch on the rl device; the physics engine is whichever
`physics_engine` names (physics/). Units: mm, g, s, rad.
"""
from __future__ import annotations

import dataclasses

import torch

from common.maths import quat_mul, yaw_quat
from fly import NUM_DOF, FlyIO, load_fly
from fly.gait import GaitReference
from physics import dof_names, make_engine
from physics.terrain import Terrain
from tasks.base.counters import EndCounters
from tasks.base.observations import ObservationHistory
from tasks.base.vec_task import VecTask

from . import observations, terminations
from .commands import VelocityCommand
from .config import TaskConfig, parse
from .randomization import FIELDS, DomainRandomization
from .rewards import REWARDS
from .state import FlyStateReader, window_steps
from .terrain import LEG_REACH, TERRAIN_FIELDS, TerrainState


class NeuroMechFly(VecTask):
    parse_config = staticmethod(parse)

    def __init__(self, cfg, rl_device, sim_device, graphics_device_id, headless,
                 virtual_screen_capture=False, force_render=False):
        self.cfg = cfg
        self.cfg_t: TaskConfig = self.parse_config(cfg)
        cfg["env"].update(self.sizes(self.cfg_t))
        super().__init__(cfg, rl_device, sim_device, graphics_device_id, headless, virtual_screen_capture, force_render)
        self.max_episode_length = max(1, round(self.cfg_t.episode_length_s / self.dt))
        self._init_buffers()
        self._reset_all()

    @staticmethod
    def sizes(c: TaskConfig) -> dict:
        """numObservations, numStates and numActions of a task with config `c`: the observation history, the
        asymmetric critic and the adhesion actions set them."""
        return {"numObservations": observations.num_observations(c.observation_history),
                "numStates": observations.num_states(c.observation_history, c.asymmetric_critic),
                "numActions": NUM_DOF + (6 if c.adhesion else 0)}

    @classmethod
    def declared_sizes(cls, task_cfg: dict) -> dict:
        """The sizes of a task config without building the task (export_onnx.py)."""
        return cls.sizes(cls.parse_config(task_cfg))

    # ------------------------------------------------------------ setup

    def create_sim(self) -> None:
        c = self.cfg_t
        self.terrain_model = Terrain(dataclasses.replace(c.terrain.params, window=LEG_REACH), kinds=c.terrain.kinds)
        self.physics = self.make_engine(load_fly(c.asset_file, adhesion=c.adhesion, terrain=self.terrain_model,
                                                 leg_collision=c.leg_collision, tarsal_armature=c.tarsal_armature,
                                                 tarsal_damping=c.tarsal_damping))
        self.fly = FlyIO(self.physics)
        self.info = self.fly.info
        if c.adhesion and len(self.info.adhesion_actuator_ids) == 0:
            raise ValueError("task.env.enableAdhesion=True needs a fly with adhesion actuators "
                             "(allowed: a model loaded with load_fly(adhesion=True))")
        self.dt = self.physics.control_dt

    def make_engine(self, model):
        """The physics engine of `model` (a subclass may run the task on another, e.g. one plain MjData)."""
        sim, fields = self.cfg_t.sim, ()
        if self.cfg_t.randomization.enabled:
            fields += FIELDS
        if self.terrain_model.num_boxes:
            fields += TERRAIN_FIELDS
        sim = dataclasses.replace(sim, world_fields=fields)
        return make_engine(self.cfg.get("physics_engine") or None, model, self.num_envs, self.sim_device, sim)

    def _init_buffers(self) -> None:
        c, dev, n, info = self.cfg_t, self.device, self.num_envs, self.info
        as_t = lambda a, dtype=torch.float32: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
        self.stand_qpos = as_t(info.stand_qpos)
        self.stand_feet = as_t(info.stand_feet)
        self.stand_feet_dz = as_t(info.stand_feet_dz)
        self.stand_dof_pos = as_t(info.stand_targets)
        self.target_low, self.target_high = as_t(info.target_low), as_t(info.target_high)
        self.dof_qpos_adr = as_t(info.qpos_adr, torch.long)
        self.terrain = TerrainState(c.terrain, self.terrain_model, self.physics, n, dev)
        self.reader = FlyStateReader(self.fly, dev, window_steps(c.velocity_window_s, self.dt), c.contact_threshold,
                                     ground_height=self.terrain.ground_height)
        self.state = self.reader.s
        self.command = VelocityCommand(n, dev, c.commands)
        self.gait = GaitReference(n, dev, c.gait, self.stand_dof_pos)
        self.obs_history = ObservationHistory(observations.OBSERVATIONS, c.observation_history, n, dev)
        self.randomization = DomainRandomization(c.randomization, self.physics, self.fly.joint_act, n, dev) \
            if c.randomization.enabled else None
        friction = self.physics.model.pair_friction[:, 0]  # the ground's contact pairs with the legs
        self._nominal_factors = torch.tensor([[float(friction.mean()) if len(friction) else 1.0, 1.0, 1.0]],
                                             device=dev)

        self.actions = torch.zeros((n, self.num_actions), device=dev)
        self.prev_actions = torch.zeros_like(self.actions)
        self.reward_terms = {k: (REWARDS[k], w) for k, w in c.rewards.scales.items() if w != 0.0}
        self.episode_sums = {k: torch.zeros(n, device=dev) for k in
                             [*self.reward_terms, "forward_speed", "cmd_speed", "speed_error", "yaw_rate_error"]}
        self.counters = EndCounters(dev, dof_names(self.physics.model))
        self.fell_buf = torch.zeros(n, device=dev, dtype=torch.bool)
        self.flipped_buf = torch.zeros(n, device=dev, dtype=torch.bool)  # the falls that were flips

    # ------------------------------------------------------------ step

    def pre_physics_step(self, actions: torch.Tensor) -> None:
        self.prev_actions.copy_(self.actions)
        self.actions.copy_(actions)
        targets = self._actions_to_targets(actions[:, :NUM_DOF])
        self.fly.set_joint_targets(targets.to(self.sim_device))
        if self.cfg_t.adhesion:
            self.fly.set_adhesion(self._actions_to_adhesion(actions[:, NUM_DOF:]).to(self.sim_device))
        if self.randomization is not None:
            self.randomization.push(self.dt)
        self.terrain.place(self.state.root_pos[:, :2])

    def _residual_scale(self) -> torch.Tensor:
        """(N, 1) rad per unit action on the gait reference: residualScale times the share that acts now."""
        return (self.cfg_t.residual_scale * self.gait.residual_fraction())[:, None]

    def _actions_to_targets(self, actions: torch.Tensor) -> torch.Tensor:
        c = self.cfg_t
        if c.gait_reference:  # residual on the gait reference
            targets = self.gait.reference() + actions * self._residual_scale()
        else:  # -1 -> bottom of the joint's target range, 0 -> standing pose, +1 -> top of the range
            a = actions * c.action_scale
            targets = self.stand_dof_pos + torch.where(a >= 0, a * (self.target_high - self.stand_dof_pos),
                                                       a * (self.stand_dof_pos - self.target_low))
        return targets.clamp(self.target_low, self.target_high)

    def targets_to_actions(self, targets: torch.Tensor) -> torch.Tensor:
        """The joint actions that command `targets` (N, 42): the inverse of the action mapping above."""
        c = self.cfg_t
        if c.gait_reference:
            scale = self._residual_scale()
            # where no residual acts (standingResidualScale 0, standing) every action commands the reference: 0
            return torch.where(scale > 0, (targets - self.gait.reference()) / scale.clamp(min=1e-9), 0.0).clamp(-1, 1)
        up = (targets - self.stand_dof_pos) / (self.target_high - self.stand_dof_pos)
        down = (targets - self.stand_dof_pos) / (self.stand_dof_pos - self.target_low)
        return (torch.where(targets >= self.stand_dof_pos, up, down) / c.action_scale).clamp(-1.0, 1.0)

    def _actions_to_adhesion(self, actions: torch.Tensor) -> torch.Tensor:
        """(N, 6) tarsal adhesion in [0, 1] from the 6 adhesion actions. With the gait reference they are residuals on
        its stance schedule, as the joint actions are on its angles: action 0 adheres in stance and lets go in swing,
        as v2's controllers do, so a policy starts from (and a joint-only policy carries over to) that. Without it,
        -1 is off and +1 full."""
        if self.cfg_t.gait_reference:
            return (self.gait.expected_stance().float() + actions).clamp(0.0, 1.0)
        return 0.5 * (actions + 1.0)

    def adhesion_to_actions(self, adhesion: torch.Tensor) -> torch.Tensor:
        """The adhesion actions that command `adhesion` (N, 6) in [0, 1]: the inverse of the mapping above."""
        if self.cfg_t.gait_reference:
            return (adhesion - self.gait.expected_stance().float()).clamp(-1.0, 1.0)
        return (2.0 * adhesion - 1.0).clamp(-1.0, 1.0)

    def hold_commands(self, speed: torch.Tensor | None = None, yaw_rate: torch.Tensor | None = None) -> None:
        """Fix every world's command (to `speed` and `yaw_rate` where given; else as drawn) through
        episodes and resets, as evaluation does, and observe it at once."""
        self.command.hold()
        if speed is not None:
            self.command.set(None, speed, yaw_rate)
        self.gait.set_command(self.command.speed, self.command.yaw_rate)
        self._fill_step_context()
        self.compute_observations()

    def get_env_state(self) -> dict:
        """Kept in training checkpoints (rl_games' env_state): the terrain curriculum's levels, and what the
        actions mean (a run whose values differ refuses the checkpoint: runner/checkpoints.py)."""
        return {"terrain": self.terrain.state(), "action_meaning": self.action_meaning()}

    def action_meaning(self) -> dict:
        """The config values that give the actions their meaning: residuals on this gait reference (or
        targets around the standing pose at this scale). A policy steps worse on another reference: the
        flat-ground policy (maxSwingFraction 0.5) run at 0.4 doubles its speed error (CPU command grid).
        And the observation history, which the policy's inputs follow (a checkpoint from before it had none)."""
        env = self.cfg["env"]
        meaning = {f"task.env.gait.{k}": v for k, v in sorted(env["gait"].items())}
        meaning["task.env.actionScale"] = env["actionScale"]
        meaning["task.env.enableAdhesion"] = self.cfg_t.adhesion  # 6 more actions: name the key, not just the size
        h = self.cfg_t.observation_history
        meaning.update({"task.env.observationHistory.terms": list(h.terms) if h.on else [],
                        "task.env.observationHistory.length": h.length if h.on else 0,
                        "task.env.observationHistory.every": h.every if h.on else 1})
        return meaning

    def set_env_state(self, state: dict | None) -> None:
        """A resumed run's worlds start again on the terrain levels they had reached."""
        if self.terrain.restore((state or {}).get("terrain")):
            self._reset_all()

    def spread_over_terrain(self) -> None:
        """Freeze the terrain curriculum and spread the worlds evenly over every kind and level
        (evaluation), then reset every world there."""
        self.terrain.spread()
        self._reset_all()

    def _reset_all(self) -> None:
        """Start every world afresh, its terrain laid out around it, and observe."""
        self.reset_idx(torch.arange(self.num_envs, device=self.device))
        self.reset_buf.zero_()
        self.reader.read()
        self.terrain.place(self.state.root_pos[:, :2])
        self._fill_step_context()
        self.compute_observations()

    def leg_contacts(self) -> torch.Tensor:
        """(N, 6) True where a leg's tarsus carries more than `contactThreshold` of body weight."""
        return self.state.contacts

    def foot_clearance(self) -> torch.Tensor:
        """(N, 6) mm from the lowest point of each leg's last tarsal segment down to the surface under it
        (for measurements: evaluate.py's foot-lift swing)."""
        low = self.fly.foot_lowest_points().to(self.device, torch.float32)
        return low[..., 2] - self.terrain.surface_height(low[..., :2])

    def physics_step(self) -> None:
        self.physics.step()

    def post_physics_step(self) -> None:
        self.extras.pop("finished_episodes", None)
        self.progress_buf += 1
        self.advance_state()
        self._compute_reward()
        self._compute_terminations()
        env_ids = self.reset_buf.nonzero(as_tuple=False).flatten()
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
            self.reader.read()
            self._fill_step_context()
        self.compute_observations()

    def advance_state(self) -> None:
        """One control step has passed: commands, gait reference and measured state move on."""
        self.command.update(self.dt)
        self.gait.set_command(self.command.speed, self.command.yaw_rate)
        self.gait.advance(self.dt)
        self.obs_history.advance()
        self.reader.read()
        self.reader.measure_motion(self.dt)
        self._fill_step_context()

    def compute_observations(self) -> None:
        """The observation of the state now; the next control step's motion is measured from here."""
        self.reader.start_step()
        own = observations.NUM_OBS
        observations.OBSERVATIONS.compute(self, self.obs_buf[:, :own])
        self.obs_history.compute(self.obs_buf[:, :own], self.obs_buf[:, own:])
        if self.num_states:
            self.states_buf[:, :self.num_obs] = self.obs_buf
            observations.PRIVILEGED.compute(self, self.states_buf[:, self.num_obs:])
            # a world whose physics just faulted has NaN geom poses until its reset: one NaN input makes the
            # critic's normaliser, then every value and the policy's update NaN (the observation reads none)
            torch.nan_to_num_(self.states_buf, nan=0.0)

    def world_factors(self) -> torch.Tensor:
        """(N, 3) each world's floor friction and its mass and actuator-gain scales (nominal without
        domain randomisation)."""
        if self.randomization is not None:
            return self.randomization.factors
        return self._nominal_factors.expand(self.num_envs, -1)

    def _fill_step_context(self) -> None:
        """What the terms compare the measured state with: the command, the gait's schedule, the actions."""
        s = self.state
        s.cmd_speed, s.cmd_yaw_rate, s.cmd_standing = self.command.speed, self.command.yaw_rate, self.command.standing
        s.expected_stance = self.gait.expected_stance()
        s.actions, s.prev_actions = self.actions, self.prev_actions
        s.target_low, s.target_high = self.target_low, self.target_high

    def _compute_reward(self) -> None:
        s, c = self.state, self.cfg_t.rewards
        bad = s.faults != 0
        reward = torch.zeros(self.num_envs, device=self.device)
        for name, (fn, weight) in self.reward_terms.items():
            value = fn(s, c) * (weight * self.dt)
            value = torch.where(bad, torch.zeros_like(value), value)
            reward += value
            self.episode_sums[name] += value
        # Never below zero: with a negative step reward, ending the episode early (falling) would pay.
        self.rew_buf[:] = reward.clamp_min(0.0) if c.only_positive else reward
        ok = (~bad).float()
        self.episode_sums["forward_speed"] += s.forward_speed * ok
        self.episode_sums["cmd_speed"] += s.cmd_speed * ok
        self.episode_sums["speed_error"] += (s.forward_speed_avg - s.cmd_speed).abs() * ok
        self.episode_sums["yaw_rate_error"] += (s.yaw_rate_avg - s.cmd_yaw_rate).abs() * ok

    def _compute_terminations(self) -> None:
        s, c = self.state, self.cfg_t
        flipped = terminations.flipped(s, c.termination_upright)
        fell = terminations.fell(s, c.termination_height) | flipped
        timeout = terminations.timed_out(self.progress_buf, self.max_episode_length)
        self.fell_buf = self.counters.end_episodes(self, s.faults, fell, timeout, s.fault_dofs)
        self.flipped_buf = flipped & self.fell_buf

    # ------------------------------------------------------------ reset

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        k = len(env_ids)
        if k == 0:
            return
        self._end_curriculum(env_ids)
        self._log_episodes(env_ids)
        c, dev = self.cfg_t, self.device
        qpos = self.stand_qpos.repeat(k, 1)
        yaw = (torch.rand(k, device=dev) * 2 - 1) * c.reset_yaw_noise
        # the keyframe stands on flat ground at z = 0; on rough ground the heading may change to keep the feet off gaps
        start, yaw = self.terrain.spawn(env_ids, yaw, self.stand_feet, c.reset_yaw_noise)
        qpos[:, 0:2] = start[:, 0:2]
        qpos[:, 2] += start[:, 2]
        noise = (torch.rand((k, NUM_DOF), device=dev) * 2 - 1) * c.reset_joint_noise
        qpos[:, self.dof_qpos_adr] += noise
        # the noise pushes feet into the ground and the contact would fling the fly: lift it by the deepest foot, to
        # first order in the noise
        qpos[:, 2] += (-(noise @ self.stand_feet_dz.T).amin(-1)).clamp_min(0.0)
        qpos[:, 3:7] = quat_mul(yaw_quat(yaw), qpos[:, 3:7])
        qvel = torch.zeros((k, self.physics.nv), device=dev)
        sim_ids = env_ids.to(self.sim_device)
        self.physics.reset_worlds(sim_ids, qpos.to(self.sim_device), qvel.to(self.sim_device))
        self.fly.set_joint_targets(self.stand_dof_pos.expand(k, -1).to(self.sim_device), sim_ids)
        if self.randomization is not None:
            self.randomization.reset(env_ids)
        self.reset_episode_state(env_ids)

    def _end_curriculum(self, env_ids: torch.Tensor) -> None:
        """Move the worlds whose episodes end to their next terrain level (tasks/neuromechfly/terrain.py)."""
        if not self.terrain.learning:
            return
        ids = env_ids[self.progress_buf[env_ids] > 0]
        self.terrain.end_episodes(ids, self.episode_sums["forward_speed"][ids] * self.dt,
                                  self.episode_sums["cmd_speed"][ids] * self.dt, self.fell_buf[ids])

    def reset_episode_state(self, env_ids: torch.Tensor) -> None:
        """Everything but the physics that starts afresh with an episode: command, gait, history."""
        self.command.draw(env_ids)
        self.gait.reset(env_ids)
        self.obs_history.restart(env_ids)
        self.gait.set_command(self.command.speed, self.command.yaw_rate)
        self.reader.reset(env_ids)
        self.actions[env_ids] = 0.0
        self.prev_actions[env_ids] = 0.0
        self.progress_buf[env_ids] = 0

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Summaries of the episodes that end now: means for TensorBoard in extras["episode"] (reward
        terms per second, speed and tracking errors), one row per episode in extras["finished_episodes"]."""
        env_ids = env_ids[self.progress_buf[env_ids] > 0]  # the first reset ends no episode
        if len(env_ids) == 0:
            return
        steps = self.progress_buf[env_ids].float()
        seconds = steps * self.dt
        # (E, terms): each term's weighted reward per second of the episode, in reward_terms' order
        reward_per_s = torch.stack([self.episode_sums[k][env_ids] / seconds for k in self.reward_terms], -1) \
            if self.reward_terms else seconds.new_zeros((len(seconds), 0))
        means = reward_per_s.mean(0)
        episode = {f"rew_{k}": means[i] for i, k in enumerate(self.reward_terms)}
        episode["forward_speed_mm_s"] = (self.episode_sums["forward_speed"][env_ids] / steps).mean()
        episode["speed_error_mm_s"] = (self.episode_sums["speed_error"][env_ids] / steps).mean()
        episode["yaw_rate_error_rad_s"] = (self.episode_sums["yaw_rate_error"][env_ids] / steps).mean()
        episode["length_s"] = seconds.mean()
        if self.terrain.learning:
            episode["terrain_level"] = self.terrain.level.float().mean()
            for name, level in self.terrain.mean_levels().items():
                episode[f"terrain_level_{name}"] = level
        for v in self.episode_sums.values():
            v[env_ids] = 0.0
        self.extras["episode"] = episode
        fell = self.fell_buf
        self.extras["finished_episodes"] = {
            "env_ids": env_ids,
            "duration_s": seconds,
            "fell": fell[env_ids].clone(),
            "flipped": self.flipped_buf[env_ids].clone(),
            "faults": self.state.faults[env_ids].clone(),
            "fault_origin": self.counters.origins(self.state.faults[env_ids], self.state.fault_dofs[env_ids]),
            "reward_per_s": reward_per_s,
        }
