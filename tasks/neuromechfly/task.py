"""NeuroMechFly walking task: track a commanded forward speed with 42 leg joint position targets.

All per-step work is batched torch on the rl device; the physics engine is whichever
`physics_engine` names (see physics/). Units: mm, g, s, rad.
"""
from __future__ import annotations

import torch

from physics import LEGS, NUM_DOF, SimParams, make_engine
from physics.engine import quat_rotate, quat_rotate_inverse

from .base.vec_task import ConfigError, VecTask, positive_float, positive_int
from .gait_clock import GaitClock

NUM_OBS = 1 + 3 + 3 + 3 + NUM_DOF * 3 + len(LEGS) + 1 + 2 + 2  # 147
REWARD_TERMS = ("forward_speed", "lateral_speed", "yaw_rate", "upright", "height", "alive", "gait_contact", "energy",
                "action_rate", "joint_limit")


class NeuroMechFly(VecTask):
    def __init__(self, cfg, rl_device, sim_device, graphics_device_id, headless,
                 virtual_screen_capture=False, force_render=False):
        self.cfg = cfg
        env = cfg["env"]
        self.enable_adhesion = bool(env.get("enableAdhesion", False))
        env["numObservations"] = NUM_OBS
        env["numActions"] = NUM_DOF + (len(LEGS) if self.enable_adhesion else 0)
        self.max_episode_length = positive_int(env.get("episodeLength"), "task.env.episodeLength")
        super().__init__(cfg, rl_device, sim_device, graphics_device_id, headless, virtual_screen_capture, force_render)
        self._init_task_buffers()
        self.reset_idx(torch.arange(self.num_envs, device=self.device))
        self.reset_buf.zero_()
        self._read_state()
        self.prev_root_xy.copy_(self.root_pos[:, :2])
        self._compute_observations()

    # ------------------------------------------------------------ setup

    def create_sim(self) -> None:
        sim = self.cfg["sim"]
        solver = sim.get("mujoco", {}) or {}
        params = SimParams(dt=positive_float(sim.get("dt"), "task.sim.dt"), substeps=self.control_freq_inv,
                           iterations=solver.get("iterations"), ls_iterations=solver.get("ls_iterations"),
                           jacobian=solver.get("jacobian"),
                           warp_qacc_smooth=bool(solver.get("warp_qacc_smooth", False)))
        self.physics = make_engine(self.cfg.get("physics_engine") or None, self.num_envs, self.sim_device, params,
                                   self.cfg["env"].get("assetFile") or None, adhesion=self.enable_adhesion)
        self.dt = self.physics.control_dt

    def _init_task_buffers(self) -> None:
        env, dev, n = self.cfg["env"], self.device, self.num_envs
        info = self.physics.info
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
        self.stand_qpos = as_t(info.stand_qpos)
        self.default_dof_pos = as_t(info.stand_ctrl[info.joint_actuator_ids])
        self.target_low, self.target_high = as_t(info.target_low), as_t(info.target_high)
        self.kp, self.force_limit = as_t(info.kp), as_t(info.force_limit)
        self.dof_qpos_adr = torch.as_tensor(info.qpos_adr, device=dev)
        self.root_com_offset = as_t(info.root_com_offset).expand(n, 3)
        stand_quat = as_t(info.stand_qpos[3:7])[None]
        self.stand_height = float(info.stand_qpos[2] + quat_rotate(stand_quat, self.root_com_offset[:1])[0, 2])
        self.body_weight = info.total_mass * 9810.0

        scales = env["observationScales"]
        self.obs_scales = {k: float(v) for k, v in scales.items()}
        self.action_scale = positive_float(env.get("actionScale", 1.0), "task.env.actionScale")
        gait = env["gait"]
        self.gait_reference = bool(gait["reference"])
        self.residual_scale = positive_float(gait["residualScale"], "task.env.gait.residualScale")
        low_f, high_f = gait["frequencyRange"]
        if not 0 < low_f <= high_f:
            raise ConfigError(f"task.env.gait.frequencyRange={[low_f, high_f]} must be [low, high] with 0 < low <= high")
        self.gait = GaitClock(n, dev, positive_float(gait["frequencyPerSpeed"], "task.env.gait.frequencyPerSpeed"),
                              (float(low_f), float(high_f)), positive_float(gait["rampRate"], "task.env.gait.rampRate"),
                              rest_pose=self.default_dof_pos)
        rew = env["rewards"]
        self.reward_scales = {k: float(rew[k]) for k in REWARD_TERMS}
        self.only_positive_rewards = bool(rew.get("onlyPositive", True))
        self.min_walk_height = positive_float(rew["minWalkHeight"], "task.env.rewards.minWalkHeight")
        low, high = env["commands"]["forwardSpeed"]
        if not 0 < low <= high:
            raise ConfigError(f"task.env.commands.forwardSpeed={[low, high]} must be [low, high] with 0 < low <= high")
        self.command_range = (float(low), float(high))
        self.termination_height = float(env["terminationHeight"])
        self.termination_up = float(env["terminationUpright"])
        self.reset_joint_noise = float(env["resetJointNoise"])
        self.reset_yaw_noise = float(env["resetYawNoise"])
        self.contact_threshold = float(env.get("contactThreshold", 0.05)) * self.body_weight

        self.actions = torch.zeros((n, self.num_actions), device=dev)
        self.prev_actions = torch.zeros_like(self.actions)
        self.commands = torch.zeros(n, device=dev)
        self.start_xy = torch.zeros((n, 2), device=dev)
        self.prev_root_xy = torch.zeros((n, 2), device=dev)
        self.start_heading = torch.zeros((n, 2), device=dev)
        self.faulted = torch.zeros(n, device=dev, dtype=torch.bool)
        self.episode_sums = {k: torch.zeros(n, device=dev) for k in REWARD_TERMS + ("forward_speed_mm_s",)}
        self.physics_faults = torch.zeros((), device=dev, dtype=torch.long)
        self.fall_count = torch.zeros((), device=dev, dtype=torch.long)
        self.gravity_dir = torch.tensor([[0.0, 0.0, -1.0]], device=dev).expand(n, 3)
        self.forward_axis = torch.tensor([[1.0, 0.0, 0.0]], device=dev).expand(n, 3)

    # ------------------------------------------------------------ step

    def pre_physics_step(self, actions: torch.Tensor) -> None:
        self.prev_actions.copy_(self.actions)
        self.actions.copy_(actions)
        self.physics.set_joint_targets(self._actions_to_targets(actions[:, :NUM_DOF]).to(self.sim_device))
        if self.enable_adhesion:
            self.physics.set_adhesion((0.5 * (actions[:, NUM_DOF:] + 1.0)).to(self.sim_device))

    def _actions_to_targets(self, actions: torch.Tensor) -> torch.Tensor:
        if self.gait_reference:  # residual on the recorded step at the clock's phase
            targets = self.gait.reference() + actions * self.residual_scale
        else:  # -1 -> bottom of the joint's target range, 0 -> standing pose, +1 -> top of the range
            a = actions * self.action_scale
            targets = self.default_dof_pos + torch.where(a >= 0, a * (self.target_high - self.default_dof_pos),
                                                         a * (self.default_dof_pos - self.target_low))
        return targets.clamp(self.target_low, self.target_high)

    def targets_to_actions(self, targets: torch.Tensor) -> torch.Tensor:
        """The joint actions that command `targets` (N, 42): the inverse of the action mapping above."""
        if self.gait_reference:
            return ((targets - self.gait.reference()) / self.residual_scale).clamp(-1.0, 1.0)
        up = (targets - self.default_dof_pos) / (self.target_high - self.default_dof_pos)
        down = (targets - self.default_dof_pos) / (self.default_dof_pos - self.target_low)
        return (torch.where(targets >= self.default_dof_pos, up, down) / self.action_scale).clamp(-1.0, 1.0)

    def leg_contacts(self) -> torch.Tensor:
        """(N, 6) True where a leg's tarsus carries more than `contactThreshold` of body weight."""
        return self.contact_forces > self.contact_threshold

    def physics_step(self) -> None:
        self.physics.step()

    def post_physics_step(self) -> None:
        self.extras.pop("finished_episodes", None)
        self.progress_buf += 1
        self.gait.advance(self.dt)
        self._read_state()
        self._measure_speed()
        self._compute_reward_and_resets()
        env_ids = self.reset_buf.nonzero(as_tuple=False).flatten()
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
            self._read_state()
        self.prev_root_xy.copy_(self.root_pos[:, :2])
        self._compute_observations()

    def _read_state(self) -> None:
        root = self.physics.root_state().to(self.device, torch.float32)
        self.dof_pos = self.physics.dof_pos().to(self.device, torch.float32)
        self.dof_vel = self.physics.dof_vel().to(self.device, torch.float32)
        self.contact_forces = self.physics.tarsal_contact_forces().to(self.device, torch.float32)
        self.targets = self.physics.joint_targets().to(self.device, torch.float32)
        # A diverged world (NaN or exploded state), or one whose contacts did not all fit the engine,
        # is reset on its own and never reaches the policy.
        state = torch.cat([root, self.dof_pos, self.dof_vel], dim=-1)
        self.faulted = (~torch.isfinite(state).all(dim=-1) | (state.abs() > 1e6).any(dim=-1)
                        | self.physics.overflowed().to(self.device))
        root = torch.where(self.faulted[:, None], torch.zeros_like(root), root)
        root[self.faulted, 3] = 1.0
        self.dof_pos = torch.where(self.faulted[:, None], self.default_dof_pos.expand_as(self.dof_pos), self.dof_pos)
        self.dof_vel = torch.where(self.faulted[:, None], torch.zeros_like(self.dof_vel), self.dof_vel)
        self.contact_forces = torch.nan_to_num(self.contact_forces, 0.0, 0.0, 0.0)
        self.root_pos, self.root_quat = root[:, 0:3], root[:, 3:7]
        self.body_height = self.root_pos[:, 2] + quat_rotate(self.root_quat, self.root_com_offset)[:, 2]
        self.base_lin_vel = quat_rotate_inverse(self.root_quat, root[:, 7:10])
        self.base_ang_vel = quat_rotate_inverse(self.root_quat, root[:, 10:13])
        self.projected_gravity = quat_rotate_inverse(self.root_quat, self.gravity_dir)
        self.heading = self._horizontal_heading(self.root_quat)

    def _horizontal_heading(self, quat: torch.Tensor) -> torch.Tensor:
        """(K, 2) unit vector of the body's x axis projected on the floor."""
        heading = quat_rotate(quat, self.forward_axis[:len(quat)])[:, :2]
        return heading / heading.norm(dim=-1, keepdim=True).clamp_min(1e-6)

    def _measure_speed(self) -> None:
        """Mean velocity over the control step, from the displacement, in the frame of the heading the
        episode started with: "straight ahead" (a fly that curves loses forward speed and drifts).
        The velocity at the step's end is a poor sample: a stepping fly lurches within each step, and
        at a stepping frequency that divides the control rate the samples fall on the same phases
        (20 Hz: 14 mm/s sampled, 19 true)."""
        v = (self.root_pos[:, :2] - self.prev_root_xy) / self.dt
        h = self.start_heading
        self.forward_speed = (v * h).sum(-1)
        self.lateral_speed = v[:, 1] * h[:, 0] - v[:, 0] * h[:, 1]  # mm/s to the left of the start heading

    def _compute_reward_and_resets(self) -> None:
        s = self.reward_scales
        upright = -self.projected_gravity[:, 2]
        height = self.body_height
        torque = (self.kp * (self.targets - self.dof_pos)).clamp(-self.force_limit, self.force_limit)
        terms = {
            # Linear in the speed error (1 at the command, 0 at rest): a signal from the first step,
            # where a Gaussian of the error is flat.
            "forward_speed": (1.0 - (self.forward_speed - self.commands).abs() / self.commands).clamp_min(-1.0),
            "lateral_speed": self.lateral_speed ** 2,
            "yaw_rate": self.base_ang_vel[:, 2] ** 2,
            "upright": upright,
            "height": (self.min_walk_height - height).clamp_min(0.0),
            "alive": torch.ones_like(height),
            # fraction of legs whose tarsal contact agrees with the clock's stance/swing schedule
            "gait_contact": (self.leg_contacts() == self.gait.expected_stance()).float().mean(-1),
            "energy": (torque * self.dof_vel).abs().sum(-1),
            "action_rate": ((self.actions - self.prev_actions) ** 2).sum(-1),
            "joint_limit": ((self.dof_pos - self.target_high).clamp_min(0)
                            + (self.target_low - self.dof_pos).clamp_min(0)).sum(-1),
        }
        reward = torch.zeros_like(height)
        for name, value in terms.items():
            weighted = torch.where(self.faulted, torch.zeros_like(value), value * s[name])
            reward += weighted
            self.episode_sums[name] += weighted
        self.episode_sums["forward_speed_mm_s"] += torch.where(self.faulted, 0.0, self.forward_speed)
        # Never below zero: with a negative step reward, ending the episode early (falling) would pay.
        self.rew_buf[:] = reward.clamp_min(0.0) if self.only_positive_rewards else reward

        fell = (height < self.termination_height) | (upright < self.termination_up) | self.faulted
        timeout = self.progress_buf >= self.max_episode_length
        self.timeout_buf[:] = (timeout & ~fell).long()
        self.reset_buf[:] = (fell | timeout).long()
        self.physics_faults += self.faulted.sum()
        self.extras["physics_faults"] = self.physics_faults.clone()
        self.fall_count += (fell & ~self.faulted).sum()
        self.extras["falls"] = self.fall_count.clone()

    def _compute_observations(self) -> None:
        sc = self.obs_scales
        contact = self.leg_contacts().float()
        self.obs_buf[:] = torch.cat([
            ((self.body_height[:, None] - self.stand_height) * sc["height"]),
            self.projected_gravity,
            self.base_lin_vel * sc["linVel"],
            self.base_ang_vel * sc["angVel"],
            (self.dof_pos - self.default_dof_pos) * sc["dofPos"],
            self.dof_vel * sc["dofVel"],
            self.actions[:, :NUM_DOF],
            contact,
            self.commands[:, None] * sc["linVel"],
            self.gait.observation(),
            self._heading_error(),
        ], dim=-1)

    def _heading_error(self) -> torch.Tensor:
        """(N, 2) cos and sin of the angle from the episode's start heading to the current one:
        what the policy needs to walk straight ahead."""
        h0, h = self.start_heading, self.heading
        return torch.stack([(h0 * h).sum(-1), h0[:, 0] * h[:, 1] - h0[:, 1] * h[:, 0]], dim=-1)

    # ------------------------------------------------------------ reset

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        k = len(env_ids)
        if k == 0:
            return
        self._log_episodes(env_ids)
        dev = self.device
        qpos = self.stand_qpos.repeat(k, 1)
        noise = (torch.rand((k, NUM_DOF), device=dev) * 2 - 1) * self.reset_joint_noise
        qpos[:, self.dof_qpos_adr] += noise
        yaw = (torch.rand(k, device=dev) * 2 - 1) * self.reset_yaw_noise
        yaw_quat = torch.stack([torch.cos(yaw / 2), torch.zeros_like(yaw), torch.zeros_like(yaw),
                                torch.sin(yaw / 2)], dim=-1)
        qpos[:, 3:7] = quat_mul(yaw_quat, qpos[:, 3:7])
        qvel = torch.zeros((k, self.physics.info.nv), device=dev)
        sim_ids = env_ids.to(self.sim_device)
        self.physics.reset_worlds(sim_ids, qpos.to(self.sim_device), qvel.to(self.sim_device))
        self.start_xy[env_ids] = qpos[:, :2]
        self.start_heading[env_ids] = self._horizontal_heading(qpos[:, 3:7])
        self.physics.set_joint_targets(self.default_dof_pos.expand(k, -1).to(self.sim_device), sim_ids)
        low, high = self.command_range
        self.commands[env_ids] = low + (high - low) * torch.rand(k, device=dev)
        self.gait.reset(env_ids, self.commands[env_ids])
        self.actions[env_ids] = 0.0
        self.prev_actions[env_ids] = 0.0
        self.progress_buf[env_ids] = 0

    def _log_episodes(self, env_ids: torch.Tensor) -> None:
        """Summaries of the episodes that end now (root state still the final one): means for
        TensorBoard in extras["episode"], one row per episode in extras["finished_episodes"]."""
        env_ids = env_ids[self.progress_buf[env_ids] > 0]  # the first reset ends no episode
        if len(env_ids) == 0:
            self.extras.pop("finished_episodes", None)
            return
        steps = self.progress_buf[env_ids].float()
        episode = {f"rew_{k}": (self.episode_sums[k][env_ids] / steps).mean() for k in REWARD_TERMS}
        episode["forward_speed_mm_s"] = (self.episode_sums["forward_speed_mm_s"][env_ids] / steps).mean()
        episode["length_s"] = (steps * self.dt).mean()
        for v in self.episode_sums.values():
            v[env_ids] = 0.0
        self.extras["episode"] = episode
        # Displacement in the frame of the fly's heading at the episode start: walking straight ahead.
        d = self.root_pos[env_ids, :2] - self.start_xy[env_ids]
        h = self.start_heading[env_ids]
        self.extras["finished_episodes"] = {
            "env_ids": env_ids,
            "forward_mm": (d * h).sum(-1),
            "lateral_mm": h[:, 0] * d[:, 1] - h[:, 1] * d[:, 0],
            "duration_s": steps * self.dt,
            "fell": (self.timeout_buf[env_ids] == 0) & ~self.faulted[env_ids],
            "faulted": self.faulted[env_ids],
        }


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (w, x, y, z) quaternions."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], dim=-1)

