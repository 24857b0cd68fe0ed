"""Carry a trained policy over to an observation layout with some inputs removed or appended, to start a
new training run from its weights (e.g. after an observation term was dropped, or a history added).

    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_walk.pth runs/warm.pth --drop 0
    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_rough.pth runs/warm.pth --append '138:144*8' '0:3*8'
    python train.py task=NeuroMechFly checkpoint=runs/warm.pth ...

`--drop` lists observation indices of the old layout (0-based; `a:b` for a range). They are removed
from the observation normaliser, from every first-layer weight that reads the observation, and from
the optimiser's moments of those weights. `--append` adds inputs after the old ones (after any drop),
each like an old input (`a:b*k`: that range k times over): the normaliser starts them with that input's
mean and variance (a past sample of a term has the term's statistics), their first-layer weights and
moments at zero, so the policy acts as before until training finds a use for them. An asymmetric critic
(rl_games' central value), whose states begin with the observation, is dropped: a run with one starts it
from the adapted policy's value head. The epoch and frame counters start again at 0; the weights, the value
normaliser, the learning rate and the optimiser's other state carry over.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from runner.checkpoints import CheckpointError, atomic_save, read_checkpoint  # noqa: E402


def parse_indices(items: list[str], size: int, flag: str = "--drop", repeat: bool = False) -> list[int]:
    """Indices in the order given; `a:b` is a range and, with `repeat`, `a:b*k` that range k times."""
    out: list[int] = []
    for item in items:
        try:
            spec, _, times = item.partition("*") if repeat else (item, "", "")
            k = int(times) if times else 1
            if k < 1:
                raise ValueError
            if ":" in spec:
                a, b = (int(x) for x in spec.split(":"))
                out.extend(list(range(a, b)) * k)
            else:
                out.extend([int(spec)] * k)
        except ValueError:
            allowed = "an index, a range a:b, or either followed by *k, k >= 1" if repeat else "an index or a range a:b"
            raise SystemExit(f"error: {flag} {item!r} is not allowed (allowed: {allowed})") from None
    bad = [i for i in out if not 0 <= i < size]
    if bad:
        raise SystemExit(f"error: {flag} {bad[0]} is not allowed (allowed: indices 0..{size - 1} of the "
                         f"checkpoint's {size} observations)")
    return out if repeat else sorted(set(out))


def adapt(state: dict, drop: list[int], append: list[int] = ()) -> dict:
    """Remove the old inputs `drop`, then append one input like old input i for each i of `append`."""
    model = state["model"]
    size = model["running_mean_std.running_mean"].shape[0]
    keep = torch.tensor([i for i in range(size) if i not in set(drop)], dtype=torch.long)
    like = torch.tensor(list(append), dtype=torch.long)

    def normaliser(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[keep], v[like]]).clone()

    def columns(v: torch.Tensor) -> torch.Tensor:  # a first layer's weights or moments: new inputs read nothing
        return torch.cat([v[:, keep], v.new_zeros((v.shape[0], len(like)))], dim=1).clone()

    for key in ("running_mean_std.running_mean", "running_mean_std.running_var"):
        model[key] = normaliser(model[key])
    for key in [k for k, v in model.items() if k.endswith(".weight") and v.ndim == 2 and v.shape[1] == size]:
        model[key] = columns(model[key])
    # the optimiser keeps per-parameter moments in parameter order; those shaped like a first layer follow it
    for moments in state.get("optimizer", {}).get("state", {}).values():
        for name, value in list(moments.items()):
            if torch.is_tensor(value) and value.ndim == 2 and value.shape[1] == size:
                moments[name] = columns(value)
    # an asymmetric critic's states begin with the observation: its network no longer fits; a run with one
    # starts it again from the adapted policy's value head (runner/rl_games_glue.critic_from_policy)
    for key in ("assymetric_vf_nets", "assymetric_vf_optimizer", "central_val_stats"):  # rl_games' spelling
        state.pop(key, None)
    state["epoch"], state["frame"] = 0, 0
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--drop", nargs="+", default=[], help="observation indices to remove (a or a:b)")
    parser.add_argument("--append", nargs="+", default=[],
                        help="inputs to append, each like an old one (a, a:b, or either *k for k copies)")
    args = parser.parse_args()
    if not args.drop and not args.append:
        raise SystemExit("error: nothing to change (allowed: --drop and/or --append)")
    try:
        state = read_checkpoint(args.source)
    except CheckpointError as exc:
        raise SystemExit(f"error: {exc}") from None
    size = state["model"]["running_mean_std.running_mean"].shape[0]
    state = adapt(state, parse_indices(args.drop, size),
                  parse_indices(args.append, size, "--append", repeat=True))
    atomic_save(state, args.target)
    print(f"wrote {args.target}: {size} -> {state['model']['running_mean_std.running_mean'].shape[0]} observations")


if __name__ == "__main__":
    main()
