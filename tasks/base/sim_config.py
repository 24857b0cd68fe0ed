"""The task YAML's `sim` section (MuJoCo settings shared by every task) into physics.SimParams."""
from __future__ import annotations

from common.checks import check_choice, check_value, optional, positive_float, positive_int
from physics import SimParams
from physics.engine import JACOBIANS, SOLVERS


def parse_sim(sim: dict, substeps: int) -> SimParams:
    solver = sim.get("mujoco", {}) or {}
    path = "task.sim.mujoco"
    jacobian = solver.get("jacobian")
    if jacobian is not None:
        check_choice(jacobian, "task.sim.mujoco.jacobian", tuple(JACOBIANS))
    threads = optional(solver, "num_threads", path, "int>=0")
    kind = solver.get("solver")
    if kind is not None:
        check_choice(kind, "task.sim.mujoco.solver", tuple(SOLVERS))
    defaults = SimParams(dt=1.0, substeps=1)
    return SimParams(
        dt=positive_float(sim.get("dt"), "task.sim.dt"), substeps=substeps,
        iterations=optional(solver, "iterations", path, "int>=1"),
        ls_iterations=optional(solver, "ls_iterations", path, "int>=1"),
        tolerance=optional(solver, "tolerance", path, "number>0"),
        c_iterations=optional(solver, "c_iterations", path, "int>=1"),
        solver=kind, jacobian=jacobian,
        warp_qacc_smooth=bool(check_value(solver.get("warp_qacc_smooth", False), "task.sim.mujoco.warp_qacc_smooth",
                                          "bool")),
        contacts_per_world=positive_int(solver.get("contacts_per_world", defaults.contacts_per_world),
                                        "task.sim.mujoco.contacts_per_world"),
        constraint_rows=positive_int(solver.get("constraint_rows", defaults.constraint_rows),
                                     "task.sim.mujoco.constraint_rows"),
        num_threads=threads or None)
