"""Evaluation of a walking controller on the NeuroMechFly task: a deterministic rl_games policy, the
gait reference alone (zero actions) or the CPG baseline, on either engine, measured by the same
tracking and gait metrics.

Each world runs whole episodes under fixed commands (the task's `commands.hold`), or under commands
set every step by a target controller (analysis/target.py). Speeds are the task's own measurements
(forward and lateral along the fly's current heading, yaw rate from its heading change, per control
step), averaged over each episode after `settle_s` (the start-up from standing); the tracking error
of an episode is |mean speed - command|. Stance comes from the tarsal contacts (analysis/gait.py), and once
more from the feet's height (`foot_lift_*`).
Everything stays on the task's device until the episode records are complete.
"""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import torch

from fly import LEGS
from physics import FAULT_KINDS

from .gait import gait_metrics

SETTLE_S = 0.5
# mm: a foot this close to the surface is down (the last tarsal capsule's radius is 0.019 mm). By load, a quarter
# to a third of a slow walk's "swing" samples are feet resting on the ground under contactThreshold of the weight.
FOOT_LIFT_MM = 0.02


class PolicyActor:
    """The mean action of an rl_games continuous policy, built from the train config and weights."""

    def __init__(self, train_params: dict, state: dict, num_obs: int, num_actions: int, device: torch.device):
        from rl_games.algos_torch.model_builder import ModelBuilder

        config = train_params["config"]
        # rl_games prints every layer it builds; a caller's stdout stays its own (evaluate.py's: the JSON alone)
        with contextlib.redirect_stdout(io.StringIO()):
            model = ModelBuilder().load(train_params)
            self.model = model.build({
                "actions_num": num_actions, "input_shape": (num_obs,), "num_seqs": 1, "value_size": 1,
                "normalize_value": config.get("normalize_value", False),
                "normalize_input": config.get("normalize_input", False)})
        self.model.load_state_dict(state["model"])
        self.model.to(device).eval()

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.model({"is_train": False, "prev_actions": None, "obs": obs})
        return out["mus"].clamp(-1.0, 1.0)


class ZeroActor:
    """Zero actions: the gait reference alone (or the standing pose without one)."""

    def __init__(self, env):
        self.shape = (env.num_envs, env.num_actions)
        self.device = env.device

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.shape, device=self.device)


class NoisyActor:
    """Another actor's actions plus Gaussian noise (the exploration of a PPO policy in training)."""

    def __init__(self, actor, std: float):
        self.actor, self.std = actor, std

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        actions = self.actor(obs)
        return (actions + self.std * torch.randn_like(actions)).clamp(-1.0, 1.0)

    def on_reset(self, env_ids: torch.Tensor) -> None:
        if hasattr(self.actor, "on_reset"):
            self.actor.on_reset(env_ids)


class CPGActor:
    """The CPG baseline expressed as task actions (joint targets mapped back to [-1, 1])."""

    def __init__(self, env, frequency_hz: float = 12.0):
        from controllers.cpg import CPGController

        self.env = env
        self.cpg = CPGController(env.num_envs, env.device, env.dt, frequency_hz=frequency_hz)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        targets, adhesion = self.cpg.step()
        actions = self.env.targets_to_actions(targets)
        if self.env.num_actions > actions.shape[1]:  # adhesion enabled: on in stance, off in swing
            actions = torch.cat([actions, self.env.adhesion_to_actions(adhesion)], dim=1)
        return actions

    def on_reset(self, env_ids: torch.Tensor) -> None:
        self.cpg.reset(env_ids)


@torch.no_grad()
def run_episodes(env, actor, episodes_per_env: int = 1, settle_s: float = SETTLE_S, course=None,
                 record_phase: bool = False) -> dict:
    """Run every world for `episodes_per_env` full-length episodes (a fall ends one early and starts
    the next). `course` (a target course) sets the commands every step.
    Returns per-episode records (host numpy), the stance timeline and its valid mask (device); with
    `record_phase` also each leg's position in the gait reference's cycle and its tarsal load (a fraction
    of body weight) at every step, for `gait.phase_profile`."""
    n, dev = env.num_envs, env.device
    steps = episodes_per_env * env.max_episode_length
    settle = int(round(settle_s / env.dt))
    stance = torch.zeros((steps, n, len(LEGS)), dtype=torch.bool, device=dev)
    grounded = torch.zeros_like(stance)  # the foot down, by its height rather than its load
    valid = torch.zeros((steps, n), dtype=torch.bool, device=dev)
    if record_phase:
        phase = torch.zeros(stance.shape, device=dev)
        load = torch.zeros(stance.shape, device=dev)
        weight = env.fly.info.weight
    sums = {k: torch.zeros(n, device=dev) for k in ("forward", "lateral", "yaw", "samples")}
    records: dict[str, list[torch.Tensor]] = {}
    obs = env.reset()["obs"]
    for t in range(steps):
        if course is not None:
            course.command(env)
        cmd_speed, cmd_yaw = env.command.speed.clone(), env.command.yaw_rate.clone()
        obs, _, done, extras = env.step(actor(obs))
        obs = obs["obs"]
        s = env.state
        finished = extras.get("finished_episodes")
        counted = done == 0  # a world that reset in this step reports its new episode's start
        if finished is not None:
            ids = finished["env_ids"]
            # the ending episode's last step counts too, when it was a timeout (not a fall or fault)
            last = (finished["faults"] == 0) & ~finished["fell"] & (finished["duration_s"] > settle_s + 1e-9)
            for key, value in (("forward", s.forward_speed), ("lateral", s.lateral_speed), ("yaw", s.yaw_rate)):
                sums[key][ids] += torch.where(last, value[ids], torch.zeros_like(value[ids]))
            sums["samples"][ids] += last.float()
            k = sums["samples"][ids].clamp_min(1)
            row = {"env_ids": ids, "cmd_speed": cmd_speed[ids], "cmd_yaw_rate": cmd_yaw[ids],
                   "forward_speed": sums["forward"][ids] / k, "lateral_speed": sums["lateral"][ids] / k,
                   "yaw_rate": sums["yaw"][ids] / k, "samples": sums["samples"][ids],
                   "duration_s": finished["duration_s"], "fell": finished["fell"], "faults": finished["faults"]}
            for key in ("flipped", "fault_origin", "reward_per_s"):
                if key in finished:
                    row[key] = finished[key]
            for key, value in row.items():
                records.setdefault(key, []).append(value)
            for v in sums.values():
                v[ids] = 0.0
        past_settle = counted & (env.progress_buf > settle)
        for key, value in (("forward", s.forward_speed), ("lateral", s.lateral_speed), ("yaw", s.yaw_rate)):
            sums[key] += torch.where(past_settle, value, torch.zeros_like(value))
        sums["samples"] += past_settle.float()
        stance[t] = env.leg_contacts()
        grounded[t] = env.foot_clearance() <= FOOT_LIFT_MM
        valid[t] = past_settle
        if record_phase:
            phase[t] = env.gait.leg_cycle()
            load[t] = s.contact_forces / weight
        if hasattr(actor, "on_reset") and bool(done.any()):
            actor.on_reset(done.nonzero().flatten())
        if course is not None and bool(done.any()):
            course.on_reset(env, done.nonzero().flatten())
    out = {k: torch.cat(v).cpu().numpy() for k, v in records.items()}
    out["stance"], out["grounded"], out["valid"], out["dt"] = stance, grounded, valid, env.dt
    if record_phase:
        out["phase"], out["load"] = phase, load
    out["fault_origin_names"] = env.counters.dof_names
    out["reward_names"] = list(getattr(env, "reward_terms", {}))
    return out


def summarize(result: dict, group: np.ndarray | None = None) -> dict:
    """One dict of metrics over all episodes in `result` (or over those whose world is in `group`)."""
    keep = np.ones(len(result.get("env_ids", [])), bool)
    if group is not None:
        keep = np.isin(result["env_ids"], group)
    r = {k: v[keep] for k, v in result.items() if isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == len(keep)}
    episodes = int(keep.sum())
    faults = r.get("faults", np.zeros(0, np.int32))
    measured = (r.get("samples", np.zeros(0)) > 0) & (faults == 0) & ~r.get("fell", np.zeros(0, bool))
    m = {k: r[k][measured] for k in ("forward_speed", "lateral_speed", "yaw_rate", "cmd_speed", "cmd_yaw_rate")} \
        if episodes else {}
    mean = lambda x: float(np.mean(x)) if len(x) else float("nan")  # noqa: E731
    summary = {
        "forward_speed_mm_s": mean(m["forward_speed"]) if episodes else float("nan"),
        "yaw_rate_rad_s": mean(m["yaw_rate"]) if episodes else float("nan"),
        "lateral_drift_mm_s": mean(np.abs(m["lateral_speed"])) if episodes else float("nan"),
        "speed_tracking_error_mm_s": mean(np.abs(m["forward_speed"] - m["cmd_speed"])) if episodes else float("nan"),
        "yaw_tracking_error_rad_s": mean(np.abs(m["yaw_rate"] - m["cmd_yaw_rate"])) if episodes else float("nan"),
        "fall_rate": float(r["fell"].mean()) if episodes else 0.0,
    }
    if "flipped" in r:  # the falls that tipped the body past terminationUpright (the rest sank too low)
        summary["flip_rate"] = float(r["flipped"].mean()) if episodes else 0.0
    summary["physics_fault_rate"] = float((faults != 0).mean()) if episodes else 0.0
    for kind, bit in FAULT_KINDS.items():
        summary[f"physics_fault_rate_{kind}"] = float(((faults & bit) != 0).mean()) if episodes else 0.0
    if "fault_origin" in r and "fault_origin_names" in result:  # faulted episodes by the DoF where they started
        names = result["fault_origin_names"]
        origins, counts = np.unique(r["fault_origin"][faults != 0], return_counts=True)
        ranked = sorted(zip(origins, counts), key=lambda x: -x[1])
        summary["physics_fault_origins"] = {names[o]: int(c) for o, c in ranked}
    standing = (m["cmd_speed"] == 0) & (m["cmd_yaw_rate"] == 0) if episodes else np.zeros(0, bool)
    if standing.any():
        summary["standing_drift_mm_s"] = mean(np.hypot(m["forward_speed"][standing], m["lateral_speed"][standing]))
    if "reward_per_s" in result and episodes:  # the task's reward terms as training sees them, falls included
        rates = result["reward_per_s"][keep]
        terms = {name: float(rates[:, i].mean()) for i, name in enumerate(result["reward_names"])}
        summary["reward_terms_per_s"] = {**terms, "sum": float(rates.sum(1).mean())}  # before the step's clip at 0
    summary.update({"episodes": episodes, "measured_episodes": int(measured.sum()),
                    "sim_seconds": float(r["duration_s"].sum()) if episodes else 0.0})
    return summary


def gait_summary(result: dict, worlds: np.ndarray | None = None) -> dict:
    """Gait metrics with stance read from the tarsal load, and the swing and duty factor again with stance
    read from the foot's height (`foot_lift_*`: a foot within FOOT_LIFT_MM of the surface is down, loaded or
    not, as real flies' swing is measured on the foot's motion)."""
    stance, grounded, valid = result["stance"], result["grounded"], result["valid"]
    if worlds is not None:
        idx = torch.as_tensor(worlds, device=stance.device)
        stance, grounded, valid = stance[:, idx], grounded[:, idx], valid[:, idx]
    # one pass over the timeline for both readings: gait_metrics' groups, worlds 0..n-1 by load, n..2n-1 by height
    n = stance.shape[1]
    group = (torch.arange(2 * n, device=stance.device) >= n).long()
    by_load, by_lift = gait_metrics(torch.cat([stance, grounded], 1), torch.cat([valid, valid], 1), result["dt"],
                                    group=group, groups=2)
    return {**by_load, "foot_lift_swing_duration_s": by_lift["swing_duration_s"],
            "foot_lift_duty_factor": by_lift["duty_factor"]}


def rounded(summary: dict) -> dict:
    return {k: rounded(v) if isinstance(v, dict) else
            (round(v, 4) if isinstance(v, float) and math.isfinite(v) else (None if isinstance(v, float) else v))
            for k, v in summary.items()}


def plot_gait(stance: torch.Tensor, dt: float, path: str, world: int = 0, seconds: float = 1.0,
              title: str = "") -> None:
    """Gait diagram of one world: stance (dark) and swing (light) of the six legs over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stance = stance[:, world].cpu().numpy()
    start = min(int(round(SETTLE_S / dt)), max(stance.shape[0] - 1, 0))  # after the start-up transient
    count = min(int(round(seconds / dt)), stance.shape[0] - start)
    trace = stance[start:start + count].T  # (6, T)
    fig, ax = plt.subplots(figsize=(8, 2.4), dpi=120)
    ax.imshow(trace, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
              extent=(start * dt, (start + count) * dt, len(LEGS) - 0.5, -0.5))
    ax.set_yticks(range(len(LEGS)), LEGS)
    ax.set_xlabel("time (s)")
    ax.set_title(title or "gait diagram (dark: stance)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@torch.no_grad()
def run_returns(env, actor, episodes_per_env: int = 1) -> dict:
    """Any VecTask: every world runs until `episodes_per_env` of its episodes have ended. Returns the
    mean return, length, the share of episodes ended before their time (terminated), the physics
    faults counted by the task, and the means of the task's own episode terms (extras["episode"])."""
    n, dev = env.num_envs, env.device
    returns = torch.zeros(n, device=dev)
    lengths = torch.zeros(n, device=dev)
    ended = torch.zeros(n, dtype=torch.long, device=dev)
    done_returns, done_lengths, terminated = [], [], []
    terms: dict[str, list[float]] = {}
    faults_before = None
    obs = env.reset()["obs"]
    while bool((ended < episodes_per_env).any()):
        obs, reward, done, extras = env.step(actor(obs))
        obs = obs["obs"]
        if faults_before is None and "physics_faults" in extras:
            faults_before = int(extras["physics_faults"])
        counting = ended < episodes_per_env
        returns += reward * counting
        lengths += counting.float()
        finished = (done != 0) & counting
        if bool(finished.any()):
            done_returns.append(returns[finished].clone())
            done_lengths.append(lengths[finished].clone())
            terminated.append((extras["time_outs"][finished] == 0).clone())
            for key, value in extras.get("episode", {}).items():
                terms.setdefault(key, []).append(float(value))
            returns[finished] = 0.0
            lengths[finished] = 0.0
            ended += finished.long()
    episode_returns, episode_lengths = torch.cat(done_returns), torch.cat(done_lengths)
    faults = int(extras.get("physics_faults", 0)) - (faults_before or 0)
    out = {"mean_episode_return": float(episode_returns.mean()),
           "mean_episode_length_s": float(episode_lengths.mean()) * env.dt,
           "terminated_rate": float(torch.cat(terminated).float().mean()),
           "physics_faults": faults, "episodes": int(len(episode_returns))}
    out.update({f"episode_{k}": float(np.mean(v)) for k, v in terms.items()})
    return out
