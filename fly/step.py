"""NeuroMechFly's recorded walking step (assets/neuromechfly/single_step.json, from flygym 1.2.1's
single_steps_untethered.pkl) and the gait table (that step redrawn for flat ground at several stride
amplitudes, assets/gait_table.py) as smooth periodic functions of phase, and the two tripods."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .model import ACTUATED_JOINTS, LEGS, NUM_DOF

STEP_FILE = Path(__file__).resolve().parents[1] / "assets" / "neuromechfly" / "single_step.json"
GAIT_TABLE_FILE = STEP_FILE.parent / "gait_table.json"
DOFS_PER_LEG = NUM_DOF // len(LEGS)
TRIPODS = (("LF", "LH", "RM"), ("LM", "RF", "RH"))  # each swings together, half a cycle after the other
TRIPOD_A = TRIPODS[0]
TWO_PI = 2.0 * math.pi


def tripod_offsets(device: str | torch.device = "cpu") -> torch.Tensor:
    """(6,) phase offset of each leg: 0 for tripod A, pi for tripod B."""
    return torch.tensor([0.0 if leg in TRIPOD_A else math.pi for leg in LEGS], device=device)


def _fourier(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine coefficients (..., K) of periodic samples (..., n): trigonometric interpolation."""
    n = samples.shape[-1]
    spectrum = torch.fft.rfft(samples, dim=-1) / n
    weight = torch.full((spectrum.shape[-1],), 2.0, dtype=samples.dtype)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return spectrum.real * weight, -spectrum.imag * weight


def table_max_amplitude(path: Path = GAIT_TABLE_FILE) -> float:
    """The largest stride amplitude the gait table was drawn for (the reference cannot step longer)."""
    return float(max(json.loads(Path(path).read_text())["amplitudes"]))


def _swing_end_phase(data: dict, duration_s: float, device) -> torch.Tensor:
    """(6,) phase at which each leg's stance begins (its swing spans the start of the cycle)."""
    stance_start = torch.tensor([data["stance_start_s"][leg] for leg in LEGS], dtype=torch.float32)
    return (TWO_PI * stance_start / duration_s).to(device)


class StepPattern:
    """One recorded walking cycle per leg as a function of phase (0..2pi, swing first, then stance),
    by trigonometric interpolation of the samples (smooth and exactly periodic, cheap in batch)."""

    def __init__(self, path: Path = STEP_FILE, device: str | torch.device = "cpu", neutral_phase: float = math.pi):
        data = json.loads(Path(path).read_text())
        samples = torch.tensor([data["joints"][j] for j in ACTUATED_JOINTS], dtype=torch.float64)[:, :-1]
        n = samples.shape[1]  # the last sample repeats the first: the cycle has n distinct samples
        cos_coef, sin_coef = _fourier(samples)  # (42, K)
        self.cos_coef, self.sin_coef = cos_coef.to(device, torch.float32), sin_coef.to(device, torch.float32)
        self.harmonics = torch.arange(cos_coef.shape[-1], device=device, dtype=torch.float32)
        self.duration_s = data["timestep_s"] * n
        self.neutral = self.joint_angles(torch.full((1, len(LEGS)), neutral_phase, device=device))[0]
        self.swing_end_phase = _swing_end_phase(data, self.duration_s, device)

    def joint_angles(self, phase: torch.Tensor, magnitude: torch.Tensor | None = None) -> torch.Tensor:
        """Targets (N, 42) for leg phases (N, 6); magnitude (N, 6) scales each leg's step around neutral."""
        leg_phase = phase.repeat_interleave(DOFS_PER_LEG, dim=1)  # (N, 42)
        angle = leg_phase[..., None] * self.harmonics  # (N, 42, K)
        value = (torch.cos(angle) * self.cos_coef + torch.sin(angle) * self.sin_coef).sum(-1)
        if magnitude is None:
            return value
        scale = magnitude.repeat_interleave(DOFS_PER_LEG, dim=1)
        return self.neutral + scale * (value - self.neutral)

    def in_swing(self, phase: torch.Tensor) -> torch.Tensor:
        """(N, 6) True while a leg is lifted (the start of its cycle, until stance begins)."""
        return torch.remainder(phase, TWO_PI) < self.swing_end_phase


class GaitTable:
    """The gait table (assets/gait_table.py): the recorded step redrawn for flat ground at stride
    amplitudes 0, 0.5, ..., evaluated at any phase and any amplitude in between (linear in amplitude,
    trigonometric in phase)."""

    def __init__(self, path: Path = GAIT_TABLE_FILE, device: str | torch.device = "cpu"):
        data = json.loads(Path(path).read_text())
        amplitudes = torch.tensor(data["amplitudes"], dtype=torch.float64)
        step = amplitudes[1] - amplitudes[0]
        if amplitudes[0] != 0 or not torch.allclose(amplitudes.diff(), step):
            raise ValueError(f"{path}: amplitudes {amplitudes.tolist()} are not evenly spaced from 0")
        samples = torch.tensor([data["joints"][j] for j in ACTUATED_JOINTS], dtype=torch.float64)[..., :-1]
        cos_coef, sin_coef = _fourier(samples.transpose(0, 1))  # (A, 42, K)
        self.cos_coef, self.sin_coef = cos_coef.to(device, torch.float32), sin_coef.to(device, torch.float32)
        self.harmonics = torch.arange(cos_coef.shape[-1], device=device, dtype=torch.float32)
        self.amplitude_step = float(step)
        self.duration_s = data["timestep_s"] * samples.shape[-1]
        self.swing_end_phase = _swing_end_phase(data, self.duration_s, device)

    @property
    def swing_fraction(self) -> torch.Tensor:
        return self.swing_end_phase / TWO_PI

    def joint_angles(self, phase: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
        """(N, 42) for leg phases (N, 6) and stride amplitudes (N, 6) >= 0."""
        leg_phase = phase.repeat_interleave(DOFS_PER_LEG, dim=1)[..., None] * self.harmonics  # (N, 42, K)
        values = (torch.einsum("njk,ajk->naj", torch.cos(leg_phase), self.cos_coef)
                  + torch.einsum("njk,ajk->naj", torch.sin(leg_phase), self.sin_coef))  # (N, A, 42)
        a = (amplitude.repeat_interleave(DOFS_PER_LEG, dim=1) / self.amplitude_step).clamp(
            0.0, values.shape[1] - 1.0)
        low = a.floor().clamp(max=values.shape[1] - 2).long()
        w = a - low
        v_low = values.gather(1, low[:, None]).squeeze(1)
        v_high = values.gather(1, (low + 1)[:, None]).squeeze(1)
        return v_low + w * (v_high - v_low)
