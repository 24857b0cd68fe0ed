"""Carry a trained policy over to an observation layout with some inputs removed, to start a new
training run from its weights (e.g. after an observation term was dropped).

    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_walk.pth runs/warm.pth --drop 0
    python train.py task=NeuroMechFly checkpoint=runs/warm.pth ...

`--drop` lists observation indices of the old layout (0-based; `a:b` for a range). They are removed
from the observation normaliser, from every first-layer weight that reads the observation, and from
the optimiser's moments of those weights. The epoch and frame counters start again at 0; the weights,
the value normaliser, the learning rate and the optimiser's other state carry over.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from runner.checkpoints import CheckpointError, atomic_save, read_checkpoint  # noqa: E402


def parse_indices(items: list[str], size: int) -> list[int]:
    out: set[int] = set()
    for item in items:
        try:
            if ":" in item:
                a, b = (int(x) for x in item.split(":"))
                out.update(range(a, b))
            else:
                out.add(int(item))
        except ValueError:
            raise SystemExit(f"error: --drop {item!r} is not allowed (allowed: an index or a range a:b)") from None
    bad = sorted(i for i in out if not 0 <= i < size)
    if bad:
        raise SystemExit(f"error: --drop {bad[0]} is not allowed (allowed: indices 0..{size - 1} of the "
                         f"checkpoint's {size} observations)")
    return sorted(out)


def adapt(state: dict, drop: list[int]) -> dict:
    model = state["model"]
    size = model["running_mean_std.running_mean"].shape[0]
    keep = torch.tensor([i for i in range(size) if i not in set(drop)])
    first_layers = [k for k, v in model.items() if k.endswith(".weight") and v.ndim == 2 and v.shape[1] == size]
    changed = {}
    for key in ("running_mean_std.running_mean", "running_mean_std.running_var"):
        changed[key] = model[key][keep].clone()
    for key in first_layers:
        changed[key] = model[key][:, keep].clone()
    for key, value in changed.items():
        model[key] = value
    # the optimiser keeps per-parameter moments in parameter order; those shaped like a first layer follow it
    for moments in state.get("optimizer", {}).get("state", {}).values():
        for name, value in list(moments.items()):
            if torch.is_tensor(value) and value.ndim == 2 and value.shape[1] == size:
                moments[name] = value[:, keep].clone()
    state["epoch"], state["frame"] = 0, 0
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--drop", nargs="+", required=True, help="observation indices to remove (a or a:b)")
    args = parser.parse_args()
    try:
        state = read_checkpoint(args.source)
    except CheckpointError as exc:
        raise SystemExit(f"error: {exc}") from None
    size = state["model"]["running_mean_std.running_mean"].shape[0]
    state = adapt(state, parse_indices(args.drop, size))
    atomic_save(state, args.target)
    print(f"wrote {args.target}: {size} -> {state['model']['running_mean_std.running_mean'].shape[0]} observations")


if __name__ == "__main__":
    main()
