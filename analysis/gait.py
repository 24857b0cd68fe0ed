"""Gait metrics from a (T, N, 6) stance timeline of tarsal contacts, on any torch device.

Stiff contacts chatter: a tarsus that carries the fly's weight loses and regains contact for a
control step or two at a time. The raw signal is debounced first (a leg changes state only after
`debounce_steps` consecutive samples disagree with its current state), so a step is counted once per
real touchdown and a swing lasts from a real lift-off to the next touchdown.
"""
from __future__ import annotations

import math

import torch

from fly import LEGS
from fly.step import TRIPODS


def debounce(stance: torch.Tensor, steps: int) -> torch.Tensor:
    """(T, N, 6) bool: `stance` with state changes shorter than `steps` samples removed."""
    if steps <= 1:
        return stance.clone()
    out = torch.empty_like(stance)
    state = stance[0].clone()
    run = torch.zeros(stance.shape[1:], dtype=torch.long, device=stance.device)
    for t in range(stance.shape[0]):
        differs = stance[t] != state
        run = torch.where(differs, run + 1, torch.zeros_like(run))
        flip = run >= steps
        state = torch.where(flip, ~state, state)
        run = torch.where(flip, torch.zeros_like(run), run)
        out[t] = state
    return out


def gait_metrics(stance: torch.Tensor, valid: torch.Tensor, dt: float, debounce_steps: int = 3,
                 group: torch.Tensor | None = None, groups: int = 1) -> list[dict]:
    """Step frequency (touchdowns per leg per second), mean swing duration, duty factor and tripod
    coordination, from stance (T, N, 6) and valid (T, N) (samples that belong to an episode past its
    start-up). With `group` (N,) ints in [0, groups), one dict per group of worlds."""
    s = debounce(stance, debounce_steps)
    v = valid[..., None].expand_as(s)
    pair = (v[1:] & v[:-1])
    touchdown = s[1:] & ~s[:-1] & pair
    liftoff = ~s[1:] & s[:-1] & pair
    # swing lengths: steps from each lift-off to the next touchdown of the same leg, inside valid samples
    swing_sum = torch.zeros(s.shape[1:], device=s.device)
    swing_count = torch.zeros(s.shape[1:], device=s.device)
    since = torch.full(s.shape[1:], -1, dtype=torch.long, device=s.device)  # -1: no lift-off seen
    for t in range(touchdown.shape[0]):
        since = torch.where(pair[t], since, torch.full_like(since, -1))
        ended = touchdown[t] & (since >= 0)
        swing_sum += torch.where(ended, (since + 1).float(), torch.zeros_like(swing_sum))
        swing_count += ended.float()
        since = torch.where(liftoff[t], torch.zeros_like(since), torch.where(since >= 0, since + 1, since))
    group = torch.zeros(s.shape[1], dtype=torch.long, device=s.device) if group is None else group.to(s.device)
    tripod = tripod_scores(s, valid)
    out = []
    for g in range(groups):
        w = group == g
        valid_steps = float(valid[:, w].sum())
        pairs = float(pair[:, w].sum())  # leg-steps
        swings = float(swing_count[w].sum())
        scores = tripod[w]
        scores = scores[torch.isfinite(scores)]
        out.append({
            "step_frequency_hz": float(touchdown[:, w].sum()) / (pairs * dt) if pairs else 0.0,
            "swing_duration_s": float(swing_sum[w].sum()) / swings * dt if swings else float("nan"),
            "duty_factor": float((s[:, w] & v[:, w]).sum()) / (valid_steps * len(LEGS)) if valid_steps else 0.0,
            "tripod_coordination": float(scores.mean()) if len(scores) else 0.0,
        })
    return out


def tripod_scores(stance: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(N,): (mean stance correlation of legs in the same tripod - mean correlation of legs in
    opposite tripods) / 2 over each world's valid samples: 1 for two tripods alternating perfectly, 0
    without tripod structure (or without stepping), -1 for the reverse. NaN for a world with fewer
    than 3 valid samples."""
    index = {leg: i for i, leg in enumerate(LEGS)}
    same = [(index[a], index[b]) for tri in TRIPODS for i, a in enumerate(tri) for b in tri[i + 1:]]
    cross = [(index[a], index[b]) for a in TRIPODS[0] for b in TRIPODS[1]]
    x = stance.double() * valid[..., None]
    count = valid.double().sum(0)  # (N,)
    mean = x.sum(0) / count.clamp_min(1)[:, None]  # (N, 6)
    centred = (stance.double() - mean) * valid[..., None]
    cov = torch.einsum("tni,tnj->nij", centred, centred)  # (N, 6, 6)
    norm = torch.sqrt(torch.diagonal(cov, dim1=1, dim2=2))  # (N, 6)
    denom = norm[:, :, None] * norm[:, None, :]
    corr = torch.where(denom > 0, cov / denom.clamp_min(1e-12), torch.zeros_like(cov))
    same_c = torch.stack([corr[:, i, j] for i, j in same], dim=-1).mean(-1)
    cross_c = torch.stack([corr[:, i, j] for i, j in cross], dim=-1).mean(-1)
    score = 0.5 * (same_c - cross_c)
    return torch.where(count >= 3, score, torch.full_like(score, math.nan)).float()


def real_fly_step_frequency(speed_mm_s):
    """DeAngelis et al. 2019 (eLife), linear fit: f = 3.3 + 0.47 v Hz."""
    return 3.3 + 0.47 * speed_mm_s


def phase_profile(phase: torch.Tensor, stance: torch.Tensor, grounded: torch.Tensor, load: torch.Tensor,
                  valid: torch.Tensor, bins: int) -> dict:
    """Stance against the gait reference's clock, pooled over legs and worlds: for each of `bins` equal bins
    of a leg's reference cycle (phase in [0, 1), swing first), the share of valid samples whose leg carries
    load (`stance`), whose foot is down (`grounded`) and the mean `load` (a fraction of body weight).
    Shows where a controller's swing departs from its reference's: early lift-off in the last bins, late
    touchdown after the reference's swing. All inputs (T, N, 6) but valid (T, N)."""
    v = valid[..., None].expand_as(stance)
    index = (phase.clamp(0.0, 1.0 - 1e-6) * bins).long()[v]
    count = torch.bincount(index, minlength=bins).double()
    share = lambda x: (torch.bincount(index, weights=x[v].double(), minlength=bins) / count.clamp_min(1))  # noqa: E731
    nan = lambda x: [round(float(a), 4) if c > 0 else None for a, c in zip(x, count)]  # noqa: E731
    return {"bin_start": [round(k / bins, 4) for k in range(bins)], "samples": [int(c) for c in count],
            "load_contact": nan(share(stance.float())), "foot_down": nan(share(grounded.float())),
            "load_share": nan(share(load.float()))}
