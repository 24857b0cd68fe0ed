"""Physics throughput: world-steps/s and simulated seconds per wall second, per engine and size.

    python benchmarks/physics_throughput.py --engine mjwarp --worlds 1024 4096 16384   # GPU
    python benchmarks/physics_throughput.py --engine mujoco --worlds 16 64 --steps 10  # CPU
    python benchmarks/physics_throughput.py --worlds 4096 --terrain flat gapped blocks mixed curriculum

Joint targets follow the standing pose plus a 12 Hz, 0.2 rad tripod-phased sinusoid, so the
fly moves and touches the floor as in training. On a rough terrain (--terrain) each world stands on its
arena's boxes (the curriculum: worlds spread over every kind and level, as the task does), laid out
once around the start. A benchmark that prints numbers, not a test.
"""
from __future__ import annotations

import argparse
import math
import os
import time

import torch

import dataclasses

from fly import LEGS, FlyIO, load_fly
from fly.model import LEG_COLLISIONS
from physics import SimParams, make_engine
from physics.terrain import FIELDS, KIND_INDEX, KINDS, Terrain, TerrainParams

TRIPOD_B = {"RF", "LM", "RH"}
JACOBIAN_NAMES = {0: "dense", 1: "sparse", 2: "auto"}
SOLVER_NAMES = {0: "PGS", 1: "CG", 2: "Newton"}


def device_name(engine: str, sim_device: str) -> str:
    if engine == "mjwarp" and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(sim_device))
    return f"CPU ({os.cpu_count()} cores)"


def setup(engine_name: str, worlds: int, sim_device: str, params: SimParams, adhesion: bool,
          terrain_name: str = "flat", leg_collision: str = "mesh"):
    """The benchmark's engine (its terrain laid out once around each world's start) and its joint targets:
    `targets(k)` sets control step k's."""
    device = sim_device if engine_name == "mjwarp" else "cpu"
    kinds = KINDS if terrain_name == "curriculum" else (terrain_name,)
    terrain = Terrain(TerrainParams(), kinds=kinds)
    if terrain.num_boxes:
        params = dataclasses.replace(params, world_fields=FIELDS)
    model = load_fly(adhesion=adhesion, terrain=terrain, leg_collision=leg_collision)
    engine = make_engine(engine_name, model, worlds, device, params)
    fly = FlyIO(engine)
    if terrain.num_boxes:
        ids = torch.arange(worlds, device=engine.device)
        kind = torch.tensor([KIND_INDEX[k] for k in kinds], device=engine.device)[ids % len(kinds)]
        d = ((ids // len(kinds)) % 5).float() / 4 if terrain_name == "curriculum" \
            else torch.ones(worlds, device=engine.device)
        geoms = torch.tensor(terrain.geom_ids(engine.model), device=engine.device)
        terrain.place(engine.world_fields, geoms, kind, d, engine.qpos[:, :2].float())
    base = fly.stand_targets()[0]
    phase = torch.tensor([math.pi if leg in TRIPOD_B else 0.0 for leg in LEGS for _ in range(7)],
                         dtype=engine.ctrl.dtype, device=engine.device)

    def targets(k: int) -> None:
        t = k * engine.control_dt
        fly.set_joint_targets((base + 0.2 * torch.sin(2 * math.pi * 12.0 * t + phase)).expand(worlds, -1))

    return engine, targets


def measure(engine_name: str, worlds: int, steps: int, sim_device: str, params: SimParams, adhesion: bool,
            terrain_name: str = "flat", leg_collision: str = "mesh") -> dict:
    dt, substeps = params.dt, params.substeps
    engine, targets = setup(engine_name, worlds, sim_device, params, adhesion, terrain_name, leg_collision)
    device = str(engine.device)

    def control(k: int) -> None:
        targets(k)
        engine.step()
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)

    control(0)  # compiles kernels and captures the CUDA graph on the GPU engine
    sync()
    start = time.perf_counter()
    for k in range(1, steps + 1):
        control(k)
    sync()
    elapsed = time.perf_counter() - start
    # buffer use, in a second untimed run of the same length (a host read after every control step)
    most_contacts, most_rows, load, pool = 0, 0, torch.zeros(3), None
    for k in range(steps + 1, 2 * steps + 1):
        control(k)
        contacts, rows = engine.buffer_usage()
        most_contacts, most_rows = max(most_contacts, int(contacts.max())), max(most_rows, int(rows.max()))
        load += solver_load(engine, contacts, rows) / steps
        use = engine.pool_usage()  # the peak of the sum over worlds: what the shared pool must hold
        pool = use if pool is None else (max(pool[0], use[0]), max(pool[1], use[1]), use[2])
    rate = worlds * steps * substeps / elapsed
    nan = (engine.faults() != 0).float().mean().item()
    iterations, jacobian = engine.model.opt.iterations, engine.model.opt.jacobian
    solver = f"{SOLVER_NAMES[int(engine.model.opt.solver)]} {iterations}/{engine.model.opt.ls_iterations} it, " \
        f"tolerance {engine.model.opt.tolerance:g}, {JACOBIAN_NAMES[int(jacobian)]}"
    if engine_name == "mjwarp":
        solver += ", qacc_smooth" if params.warp_qacc_smooth else ", no qacc_smooth"
    solver += ", adhesion" if adhesion else ""
    solver += ", capsule legs" if leg_collision == "capsule" else ""
    return {"device": device_name(engine_name, device), "engine": engine_name, "worlds": worlds, "solver": solver,
            "terrain": terrain_name, "pairs": engine.model.npair, "contacts": most_contacts, "rows": most_rows,
            "pool": None if pool is None else dict(zip(("candidates", "contacts", "size"), pool)),
            "world_steps_s": rate, "sim_s_per_s": rate * dt, "fault_fraction": nan,
            **dict(zip(LOAD_KEYS, load.tolist()))}


LOAD_KEYS = ("mean_contacts", "mean_rows", "mean_solver_iterations")


def solver_load(engine, contacts: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean contacts, constraint rows and solver iterations per world at the last physics step: what the
    solver's cost grows with, so that two workloads' throughputs can be compared."""
    return torch.stack([contacts.float().mean().cpu(), rows.float().mean().cpu(),
                        engine.solver_iterations().float().mean().cpu()])


def run_config(terrain: str) -> dict:
    """train.py's resolved config (cfg/config.yaml, task NeuroMechFly and its train config) on `terrain`."""
    from hydra import compose, initialize_config_dir

    from runner.config import CFG_DIR, register_resolvers, to_dict

    register_resolvers()
    with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
        return to_dict(compose("config", overrides=["task=NeuroMechFly", f"task.env.terrain.type={terrain}"]))


def task_config(terrain: str) -> dict:
    """The task's resolved config (cfg/task/NeuroMechFly.yaml) on `terrain`."""
    return run_config(terrain)["task"]


def task_buffers(task: dict) -> tuple[int, int]:
    """The task's contacts and constraint rows per world (its config from `task_config`)."""
    mujoco_cfg = task["sim"]["mujoco"]
    return int(mujoco_cfg["contacts_per_world"]), int(mujoco_cfg["constraint_rows"])


def task_sim_params(terrain: str, base: SimParams, contacts: int | None = None, rows: int | None = None) -> SimParams:
    """`base` with the task's contact pool and constraint rows per world on `terrain`, or the ones given."""
    task_contacts, task_rows = task_buffers(task_config(terrain))
    return dataclasses.replace(base, contacts_per_world=contacts or task_contacts, constraint_rows=rows or task_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["mjwarp", "mujoco"], default="mjwarp")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--steps", type=int, default=50, help="control steps timed per size")
    parser.add_argument("--substeps", type=int, default=25, help="physics steps per control step (the task's 25)")
    parser.add_argument("--sim-device", default="cuda:0")
    parser.add_argument("--iterations", type=int, help="solver iterations (default: the model's)")
    parser.add_argument("--ls-iterations", type=int, help="line-search iterations (default: the model's)")
    parser.add_argument("--tolerance", type=float, help="the solver's convergence tolerance (default: the model's)")
    parser.add_argument("--jacobian", choices=["dense", "sparse", "auto"], help="default: the model's")
    parser.add_argument("--solver", choices=["newton", "cg"], help="default: the model's")
    parser.add_argument("--warp-qacc-smooth", action="store_true", help="MuJoCo Warp: compute the unconstrained "
                        "acceleration every step (task.sim.mujoco.warp_qacc_smooth)")
    parser.add_argument("--adhesion", action="store_true",
                        help="keep the 6 tarsal adhesion actuators (at zero control)")
    parser.add_argument("--terrain", nargs="+", default=["flat"], choices=[*KINDS, "curriculum"])
    parser.add_argument("--leg-collision", choices=LEG_COLLISIONS, default="mesh",
                        help="the legs' ground contacts: v2's meshes or fitted capsules (task.env.legCollision)")
    parser.add_argument("--contacts-per-world", type=int, help="default: the task's (cfg/task/NeuroMechFly.yaml)")
    parser.add_argument("--constraint-rows", type=int,
                        help="default: the task's (cfg/task/NeuroMechFly.yaml): 128 on flat ground, 256 on rough")
    args = parser.parse_args()
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise SystemExit(f"error: --tolerance={args.tolerance} is not allowed (allowed: a finite number > 0)")
    base = SimParams(dt=load_fly(adhesion=False).opt.timestep, substeps=args.substeps, iterations=args.iterations,
                     ls_iterations=args.ls_iterations, tolerance=args.tolerance, jacobian=args.jacobian,
                     solver=args.solver, warp_qacc_smooth=args.warp_qacc_smooth)
    print("| device | engine | solver | terrain | contact pairs | worlds | world-steps/s | sim s / s | "
          "faulted worlds at the end | most contacts / rows in a world (of) | shared pool: most candidates / contacts "
          "per world on average (of) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for terrain in args.terrain:
        params = task_sim_params(terrain, base, args.contacts_per_world, args.constraint_rows)
        for n in args.worlds:
            r = measure(args.engine, n, args.steps, args.sim_device, params, args.adhesion, terrain,
                        args.leg_collision)
            print(f"| {r['device']} | {r['engine']} | {r['solver']} | {r['terrain']} | {r['pairs']} | {r['worlds']} | "
                  f"{r['world_steps_s']:,.0f} | {r['sim_s_per_s']:,.1f} | {r['fault_fraction']:.1%} | "
                  f"{r['contacts']} / {r['rows']} ({params.contacts_per_world} / {params.constraint_rows}) | "
                  f"{pool_cell(r['pool'], n)} |", flush=True)


def pool_cell(pool: dict | None, worlds: int) -> str:
    if pool is None:
        return "- (MuJoCo C grows its buffers)"
    return f"{pool['candidates'] / worlds:.1f} / {pool['contacts'] / worlds:.1f} ({pool['size'] / worlds:g})"


if __name__ == "__main__":
    main()
