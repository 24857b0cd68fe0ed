"""Batched rotation maths on (w, x, y, z) quaternions, torch on any device."""
from __future__ import annotations

import math

import torch


def quat_rotate(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate vectors (K, 3) by unit quaternions (K, 4)."""
    w, xyz = quat[:, :1], quat[:, 1:]
    t = 2.0 * torch.cross(xyz, vec, dim=-1)
    return vec + w * t + torch.cross(xyz, t, dim=-1)


def quat_rotate_inverse(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    conj = torch.cat([quat[:, :1], -quat[:, 1:]], dim=-1)
    return quat_rotate(conj, vec)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """(K, 4) rotations about the world z axis."""
    zero = torch.zeros_like(yaw)
    return torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], dim=-1)


def heading_angle(quat: torch.Tensor) -> torch.Tensor:
    """(K,) yaw of the body's x axis projected on the floor, in (-pi, pi]."""
    w, x, y, z = quat.unbind(-1)
    return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Angles to (-pi, pi]."""
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi
