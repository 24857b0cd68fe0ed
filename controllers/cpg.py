"""NeuroMechFly v2's CPG walking controller, batched in torch: the learning-free baseline.

Six coupled phase oscillators (one per leg, tripod phase offsets, about 12 Hz) each replay the
recorded single step of their leg (fly/step.py) as joint targets,
the step scaled by the oscillator's amplitude around the leg's neutral pose. This follows the
controller described in Wang-Chen et al. (Nature Methods 2024), written here for N worlds at once.
"""
from __future__ import annotations

import math

import torch

from fly import LEGS
from fly.step import TRIPOD_A, TWO_PI, StepPattern


class CPGNetwork:
    """Kuramoto-style oscillators: dtheta_i = 2 pi f + sum_j r_j w_ij sin(theta_j - theta_i - phi_ij),
    dr_i = a (R - r_i). Phase biases phi put the two tripods half a cycle apart."""

    def __init__(self, num_envs: int, device: str | torch.device, frequency_hz: float = 12.0,
                 amplitude: float = 1.0, coupling: float = 10.0, convergence: float = 20.0,
                 integration_dt: float = 1e-3):
        in_a = torch.tensor([leg in TRIPOD_A for leg in LEGS], device=device)
        opposite = in_a[:, None] != in_a[None, :]
        self.phase_bias = opposite.float() * math.pi
        self.weights = opposite.float() * coupling
        self.frequency, self.amplitude, self.convergence = frequency_hz, amplitude, convergence
        self.integration_dt = integration_dt
        self.phase = torch.zeros((num_envs, len(LEGS)), device=device)
        self.magnitude = torch.zeros_like(self.phase)

    def reset(self, env_ids: torch.Tensor, random_phase: bool = True) -> None:
        """Start the chosen worlds at rest (zero amplitude), from random or zero phases."""
        k = len(env_ids)
        self.phase[env_ids] = torch.rand((k, len(LEGS)), device=self.phase.device) * TWO_PI if random_phase else 0.0
        self.magnitude[env_ids] = 0.0

    def advance(self, duration_s: float) -> None:
        """Integrate the network for `duration_s` (explicit Euler at integration_dt)."""
        steps = max(1, round(duration_s / self.integration_dt))
        dt = duration_s / steps
        for _ in range(steps):
            diff = self.phase[:, None, :] - self.phase[:, :, None] - self.phase_bias  # [n, i, j]: theta_j - theta_i - phi_ij
            coupling = (self.magnitude[:, None, :] * self.weights * torch.sin(diff)).sum(-1)
            self.phase = self.phase + dt * (TWO_PI * self.frequency + coupling)
            self.magnitude = self.magnitude + dt * self.convergence * (self.amplitude - self.magnitude)


class CPGController:
    """Joint targets (N, 42) and adhesion (N, 6) for N worlds from the CPG and the recorded step."""

    def __init__(self, num_envs: int, device: str | torch.device, control_dt: float, **network_kwargs):
        self.pattern = StepPattern(device=device)
        self.network = CPGNetwork(num_envs, device, **network_kwargs)
        self.control_dt = control_dt
        self.network.reset(torch.arange(num_envs, device=device))

    def reset(self, env_ids: torch.Tensor) -> None:
        self.network.reset(env_ids)

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.network.advance(self.control_dt)
        targets = self.pattern.joint_angles(self.network.phase, self.network.magnitude)
        adhesion = (~self.pattern.in_swing(self.network.phase)).float()
        return targets, adhesion
