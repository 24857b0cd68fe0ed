"""Where a MuJoCo Warp physics step goes, per terrain: MuJoCo Warp's own event trace (its `event_scope`
functions, as `mjwarp-testspeed --event_trace` prints them) of the benchmark's workload, in ns per
world-step, side by side.

    python benchmarks/physics_trace.py --worlds 4096 --terrain flat gapped blocks mixed
    python benchmarks/physics_trace.py --worlds 4096 --terrain blocks --disable multiccd   # a lever, measured

The workload is benchmarks/physics_throughput.py's (tripod sinusoid, the task's solver and buffers, boxes
laid out around each world's start): `--warmup` control steps, then `--steps` single physics steps from
one CUDA graph with CUDA events around each traced function. Also printed: candidate pairs after the
broadphase, contacts, constraint rows and Newton iterations per world (means over the traced steps).
A benchmark that prints numbers, not a test.
"""
from __future__ import annotations

import argparse
import time

import torch
from physics_throughput import device_name, setup, task_sim_params

from fly import load_fly
from fly.model import LEG_COLLISIONS
from physics import SimParams
from physics.terrain import KINDS


def _add(total: dict, trace: dict) -> dict:
    """Sum two event traces ({name: (times_ms, sub_trace)}), each function's calls added up."""
    out = dict(total)
    for name, (times, sub) in trace.items():
        t0, s0 = out.get(name, (0.0, {}))
        out[name] = (t0 + sum(times), _add(s0, sub))
    return out


def _rows(trace: dict, depth: int, max_depth: int, path: str = "") -> list[tuple[str, float]]:
    """(path/of/function, ms) for every function down to `max_depth` levels, parents first."""
    rows = []
    for name, (ms, sub) in trace.items():
        rows.append((path + name, ms))
        if depth < max_depth:
            rows += _rows(sub, depth + 1, max_depth, path + name + "/")
    return rows


def set_options(m, disable: list[str], options: list[str]) -> None:
    """Set MuJoCo Warp DisableBit flags and Option fields (`name=value`) on model `m`."""
    import mujoco_warp as mjw
    import warp as wp

    for flag in disable:
        if not hasattr(mjw.DisableBit, flag.upper()):
            raise SystemExit(f"error: --disable {flag} is not a MuJoCo Warp DisableBit "
                             f"(allowed: {', '.join(b.name.lower() for b in mjw.DisableBit)})")
        m.opt.disableflags = int(m.opt.disableflags) | int(getattr(mjw.DisableBit, flag.upper()))
    for option in options:
        name, _, value = option.partition("=")
        if not hasattr(m.opt, name) or not value:
            raise SystemExit(f"error: --opt {option!r} is not name=value with a MuJoCo Warp Option field name")
        current = getattr(m.opt, name)
        if isinstance(current, wp.array):
            current.fill_(float(value))  # per-world values (tolerance, timestep, ...): all worlds alike
        else:
            setattr(m.opt, name, type(current)(int(value) if isinstance(current, int) else value))


def trace(engine, targets, warmup: int, steps: int, disable: list[str], options: list[str]) -> dict:
    import mujoco_warp as mjw
    import warp as wp
    from mujoco_warp._src import warp_util  # testspeed's tracer: MuJoCo Warp's privileged internals

    for k in range(warmup):
        targets(k)
        engine.step()
    m, d = engine.warp_model, engine.warp_data
    set_options(m, disable, options)
    device = wp.get_device(str(engine.device))
    stats = torch.zeros(4)
    total, wall = {}, 0.0
    with wp.ScopedDevice(device):
        mjw.step(m, d)  # compiles what the options changed, outside the trace
    with wp.ScopedDevice(device), warp_util.EventTracer(enabled=True) as tracer:
        with wp.ScopedCapture(device=device) as capture:
            mjw.step(m, d)
        for i in range(steps):
            if i % engine.params.substeps == 0:
                targets(warmup + i // engine.params.substeps)
                torch.cuda.synchronize()
            start = time.perf_counter()
            wp.capture_launch(capture.graph)
            wp.synchronize()
            wall += time.perf_counter() - start
            total = _add(total, tracer.trace())
            candidates, contacts, _ = engine.pool_usage()
            stats += torch.tensor([candidates, contacts, wp.to_torch(d.nefc).float().mean().item(),
                                   engine.solver_iterations().float().mean().item()])
    n = engine.num_worlds
    stats /= steps
    return {"trace": total, "ns_per_world_step": 1e9 * wall / (steps * n),
            "candidates": stats[0].item() / n, "contacts": stats[1].item() / n, "rows": stats[2].item(),
            "iterations": stats[3].item(), "faulted": (engine.faults() != 0).float().mean().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", type=int, default=4096)
    parser.add_argument("--terrain", nargs="+", default=["flat", "blocks"], choices=[*KINDS, "curriculum"])
    parser.add_argument("--warmup", type=int, default=20, help="control steps before the trace")
    parser.add_argument("--steps", type=int, default=200, help="physics steps traced")
    parser.add_argument("--depth", type=int, default=2, help="levels of nested functions printed")
    parser.add_argument("--disable", nargs="*", default=[], help="MuJoCo Warp DisableBit names set for the "
                        "trace only (multiccd, nativeccd, ...): levers, measured")
    parser.add_argument("--opt", nargs="*", default=[], help="MuJoCo Warp Option fields set for the trace only, "
                        "name=value (broadphase_filter=15, tolerance=1e-6, ...)")
    parser.add_argument("--leg-collision", choices=LEG_COLLISIONS, default="mesh",
                        help="the legs' ground contacts: v2's meshes or fitted capsules (task.env.legCollision)")
    parser.add_argument("--sim-device", default="cuda:0")
    args = parser.parse_args()
    if not (args.sim_device.startswith("cuda") and torch.cuda.is_available()):
        raise SystemExit(f"error: --sim-device {args.sim_device} is not an available CUDA device "
                         "(allowed: cuda:<index>; the trace times CUDA events in a CUDA graph)")
    results = {}
    base = SimParams(dt=load_fly(adhesion=False).opt.timestep, substeps=25)  # the task's 25 substeps
    for terrain in args.terrain:
        params = task_sim_params(terrain, base)
        engine, targets = setup("mjwarp", args.worlds, args.sim_device, params, False, terrain, args.leg_collision)
        results[terrain] = trace(engine, targets, args.warmup, args.steps, args.disable, args.opt)
        engine.close()
        del engine
    names = list(results)
    print(f"{device_name('mjwarp', args.sim_device)}, {args.worlds} worlds, {args.steps} physics steps after "
          f"{args.warmup} control steps" + (f", disabled: {' '.join(args.disable)}" if args.disable else "")
          + (f", options: {' '.join(args.opt)}" if args.opt else "")
          + (", capsule legs" if args.leg_collision == "capsule" else ""))
    print("| ns per world-step | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key, label in (("ns_per_world_step", "whole step (wall)"), ("candidates", "broadphase candidates / world"),
                       ("contacts", "contacts / world"), ("rows", "constraint rows / world"),
                       ("iterations", "Newton iterations"), ("faulted", "worlds faulted")):
        fmt = "{:.1f}" if key == "ns_per_world_step" else "{:.3g}"
        print(f"| {label} | " + " | ".join(fmt.format(results[t][key]) for t in names) + " |")
    scale = {t: 1e6 / (args.steps * args.worlds) for t in names}  # ms summed -> ns per world-step
    order = [name for name, _ in _rows(results[names[0]]["trace"], 0, args.depth)]
    seen = {t: dict(_rows(results[t]["trace"], 0, args.depth)) for t in names}
    for t in names[1:]:
        order += [name for name in seen[t] if name not in order]
    for name in order:
        label = "&nbsp;&nbsp;" * name.count("/") + name.rsplit("/", 1)[-1]
        print(f"| {label} | " + " | ".join(
            f"{seen[t][name] * scale[t]:.1f}" if name in seen[t] else "-" for t in names) + " |")


if __name__ == "__main__":
    main()
