"""Carry a trained policy over to an observation layout with some inputs removed or appended, or to more
actions, to start a new training run from its weights (e.g. after an observation term was dropped, a history
added, or adhesion switched on).

    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_walk.pth runs/warm.pth --drop 0
    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_rough.pth runs/warm.pth --append '138:144*8' '0:3*8'
    python scripts/adapt_checkpoint.py checkpoints/NeuroMechFly_rough.pth runs/warm.pth --add-actions 6
    python train.py task=NeuroMechFly checkpoint=runs/warm.pth ...

`--drop` lists observation indices of the old layout (0-based; `a:b` for a range). They are removed
from the observation normaliser, from every first-layer weight that reads the observation, and from
the optimiser's moments of those weights. `--append` adds inputs after the old ones (after any drop),
each like an old input (`a:b*k`: that range k times over): the normaliser starts them with that input's
mean and variance (a past sample of a term has the term's statistics), their first-layer weights and
moments at zero, so the policy acts as before until training finds a use for them. An asymmetric critic
(rl_games' central value), whose states begin with the observation, is dropped: a run with one starts it
from the adapted policy's value head. `--add-actions k` appends k actions after the old ones: their mean
weights, bias and moments at zero (action 0: the adhesion actions of `task.env.enableAdhesion` then adhere in the
gait reference's stance, as v2's controllers do), their log-std the old actions' mean unless `--sigma` gives it;
the critic, which does not see actions, is kept. The epoch and frame counters start again at 0; the weights, the
value normaliser, the learning rate and the optimiser's other state carry over.
"""
from __future__ import annotations

import argparse
import math
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


ACTION_PARAMS = ("a2c_network.sigma", "a2c_network.mu.weight", "a2c_network.mu.bias")  # rl_games' continuous head


def add_actions(state: dict, k: int, sigma: float | None = None) -> dict:
    """Append k actions to the policy's head: zero mean weights and bias, log-std `sigma` (default: the old
    actions' mean), zero optimiser moments."""
    model = state["model"]
    missing = [key for key in ACTION_PARAMS if key not in model]
    if missing:
        raise CheckpointError(f"{missing[0]} is not in the checkpoint (allowed: an rl_games continuous policy with "
                              f"fixed_sigma, which has {', '.join(ACTION_PARAMS)})")
    old = model["a2c_network.sigma"]
    value = float(old.mean()) if sigma is None else sigma
    weight, bias = model["a2c_network.mu.weight"], model["a2c_network.mu.bias"]
    grown = {"a2c_network.sigma": torch.cat([old, old.new_full((k,), value)]),
             "a2c_network.mu.weight": torch.cat([weight, weight.new_zeros((k, weight.shape[1]))]),
             "a2c_network.mu.bias": torch.cat([bias, bias.new_zeros(k)])}
    # the optimiser numbers the parameters in the network's order: the model's keys less its normalisers' buffers
    params = [key for key in model if "mean_std." not in key]
    optimizer = state.get("optimizer", {})
    if optimizer.get("state") and len(params) != len(optimizer.get("param_groups", [{}])[0].get("params", [])):
        raise CheckpointError(f"the optimiser holds {len(optimizer['param_groups'][0]['params'])} parameters and the "
                              f"policy {len(params)} (allowed: a checkpoint saved by rl_games' a2c_continuous)")
    for index, key in enumerate(params):
        moments = optimizer.get("state", {}).get(index, {})
        if key in grown:
            for name, value_ in list(moments.items()):
                if torch.is_tensor(value_) and value_.shape == model[key].shape:
                    moments[name] = torch.cat([value_, value_.new_zeros((k, *value_.shape[1:]))])
    model.update(grown)
    state["epoch"], state["frame"] = 0, 0
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--drop", nargs="+", default=[], help="observation indices to remove (a or a:b)")
    parser.add_argument("--append", nargs="+", default=[],
                        help="inputs to append, each like an old one (a, a:b, or either *k for k copies)")
    parser.add_argument("--add-actions", type=int, default=0, help="actions to append (e.g. 6 for adhesion)")
    parser.add_argument("--sigma", type=float, help="log-std of the added actions (default: the old ones' mean)")
    args = parser.parse_args()
    if not args.drop and not args.append and not args.add_actions:
        raise SystemExit("error: nothing to change (allowed: --drop, --append and/or --add-actions)")
    if args.add_actions < 0:
        raise SystemExit(f"error: --add-actions {args.add_actions} is not allowed (allowed: an integer >= 1)")
    if args.sigma is not None and not args.add_actions:
        raise SystemExit(f"error: --sigma {args.sigma} without --add-actions is not allowed (allowed: --sigma with "
                         "--add-actions k, for the added actions)")
    if args.sigma is not None and not math.isfinite(args.sigma):
        raise SystemExit(f"error: --sigma {args.sigma} is not allowed (allowed: a finite log-std)")
    try:
        state = read_checkpoint(args.source)
    except CheckpointError as exc:
        raise SystemExit(f"error: {exc}") from None
    size = state["model"]["running_mean_std.running_mean"].shape[0]
    actions = state["model"].get("a2c_network.mu.bias", torch.zeros(0)).shape[0]
    if args.drop or args.append:
        state = adapt(state, parse_indices(args.drop, size),
                      parse_indices(args.append, size, "--append", repeat=True))
    if args.add_actions:
        try:
            state = add_actions(state, args.add_actions, args.sigma)
        except CheckpointError as exc:
            raise SystemExit(f"error: {exc}") from None
    atomic_save(state, args.target)
    print(f"wrote {args.target}: {size} -> {state['model']['running_mean_std.running_mean'].shape[0]} observations, "
          f"{actions} -> {state['model'].get('a2c_network.mu.bias', torch.zeros(0)).shape[0]} actions")


if __name__ == "__main__":
    main()
