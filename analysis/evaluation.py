"""Evaluation of a walking controller on the NeuroMechFly task: a deterministic rl_games policy or
the CPG baseline, run on either engine, measured by the same gait metrics.

Stance and swing come from the tarsal contact sensors (a leg is in stance while its tarsus carries
more than the task's `contactThreshold` of body weight).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from physics import LEGS

TRIPODS = (("LF", "LH", "RM"), ("LM", "RF", "RH"))


class PolicyActor:
    """The mean action of an rl_games continuous policy, built from the train config and weights."""

    def __init__(self, train_params: dict, state: dict, num_obs: int, num_actions: int, device: torch.device):
        from rl_games.algos_torch.model_builder import ModelBuilder

        config = train_params["config"]
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
            actions = torch.cat([actions, 2.0 * adhesion - 1.0], dim=1)
        return actions

    def on_reset(self, env_ids: torch.Tensor) -> None:
        self.cpg.reset(env_ids)


@torch.no_grad()
def run_episodes(env, actor, episodes_per_env: int, settle_s: float = 0.25) -> dict:
    """Run every world for `episodes_per_env` full-length episodes (falls end one early and start
    the next). Returns per-episode records and the stance timeline (host numpy) for gait metrics."""
    n = env.num_envs
    steps = episodes_per_env * env.max_episode_length
    stance = torch.zeros((steps, n, len(LEGS)), dtype=torch.bool, device=env.device)
    valid = torch.zeros((steps, n), dtype=torch.bool, device=env.device)
    settle_steps = int(round(settle_s / env.dt))
    records: dict[str, list[torch.Tensor]] = {}
    obs = env.reset()["obs"]
    for t in range(steps):
        obs, _, done, extras = env.step(actor(obs))
        obs = obs["obs"]
        finished = extras.get("finished_episodes")
        if finished is not None:
            for key, value in finished.items():
                records.setdefault(key, []).append(value)
        stance[t] = env.leg_contacts()
        # progress counts control steps in the current episode; skip each episode's start-up
        valid[t] = (env.progress_buf > settle_steps) & (done == 0)
        if hasattr(actor, "on_reset") and bool(done.any()):
            actor.on_reset(done.nonzero().flatten())
    out = {k: torch.cat(v).cpu().numpy() for k, v in records.items()}
    out["stance"] = stance.cpu().numpy()
    out["valid"] = valid.cpu().numpy()
    out["dt"] = env.dt
    return out


def gait_metrics(stance: np.ndarray, valid: np.ndarray, dt: float) -> dict:
    """Step frequency, duty factor and tripod coordination from a (T, N, 6) stance timeline."""
    t_valid = valid.sum()
    if t_valid == 0:
        return {"step_frequency_hz": 0.0, "duty_factor": 0.0, "tripod_coordination": 0.0}
    duty = float((stance & valid[..., None]).sum() / (t_valid * stance.shape[2]))
    touchdowns = stance[1:] & ~stance[:-1] & valid[1:, :, None] & valid[:-1, :, None]
    pairs = valid[1:] & valid[:-1]
    frequency = float(touchdowns.sum() / max(pairs.sum() * dt * stance.shape[2], 1e-9))
    return {"step_frequency_hz": frequency, "duty_factor": duty,
            "tripod_coordination": tripod_coordination(stance, valid)}


def tripod_coordination(stance: np.ndarray, valid: np.ndarray) -> float:
    """(mean stance correlation of legs in the same tripod - mean correlation of legs in opposite
    tripods) / 2, per world over its valid steps, averaged over worlds: 1 for two tripods
    alternating perfectly, 0 without tripod structure (or without stepping), -1 for the reverse."""
    index = {leg: i for i, leg in enumerate(LEGS)}
    same = [(index[a], index[b]) for tri in TRIPODS for i, a in enumerate(tri) for b in tri[i + 1:]]
    cross = [(index[a], index[b]) for a in TRIPODS[0] for b in TRIPODS[1]]
    scores = []
    for w in range(stance.shape[1]):
        x = stance[valid[:, w], w].astype(np.float64)
        if len(x) < 3:
            continue
        x = x - x.mean(0)
        norm = np.sqrt((x ** 2).sum(0))
        corr = np.where(np.outer(norm, norm) > 0, (x.T @ x) / np.maximum(np.outer(norm, norm), 1e-12), 0.0)
        scores.append(0.5 * (np.mean([corr[i, j] for i, j in same]) - np.mean([corr[i, j] for i, j in cross])))
    return float(np.mean(scores)) if scores else 0.0


def summarize(result: dict) -> dict:
    duration = result.get("duration_s", np.zeros(0))
    episodes = len(duration)
    sim_seconds = float(duration.sum())
    completed = ~result["fell"] if episodes else np.zeros(0, bool)
    summary = {
        # speeds over whole episodes, weighted by their length: distance covered / time
        "forward_speed_mm_s": float(result["forward_mm"].sum() / sim_seconds) if episodes else 0.0,
        "lateral_drift_mm_s": float(np.abs(result["lateral_mm"]).sum() / sim_seconds) if episodes else 0.0,
        "fall_rate": float(result["fell"].mean()) if episodes else 0.0,
        "physics_fault_rate": float(result["faulted"].mean()) if episodes else 0.0,
        "episodes": episodes,
        "completed_episodes": int(completed.sum()),
        "sim_seconds": sim_seconds,
    }
    summary.update(gait_metrics(result["stance"], result["valid"], result["dt"]))
    return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in summary.items()}


def plot_gait(stance: np.ndarray, dt: float, path: str, world: int = 0, seconds: float = 1.0,
              title: str = "") -> None:
    """Gait diagram of one world: stance (dark) and swing (light) of the six legs over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(int(round(0.25 / dt)), max(stance.shape[0] - 1, 0))  # after the start-up transient
    count = min(int(round(seconds / dt)), stance.shape[0] - start)
    trace = stance[start:start + count, world].T  # (6, T)
    fig, ax = plt.subplots(figsize=(8, 2.4), dpi=120)
    ax.imshow(trace, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
              extent=(start * dt, (start + count) * dt, len(LEGS) - 0.5, -0.5))
    ax.set_yticks(range(len(LEGS)), LEGS)
    ax.set_xlabel("time (s)")
    ax.set_title(title or "gait diagram (dark: stance)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
