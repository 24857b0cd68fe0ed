"""The command grid as a table and pictures, from evaluate.py's grid JSON:

    python evaluate.py task=NeuroMechFly checkpoint=checkpoints/NeuroMechFly_walk.pth +mode=grid > grid.json
    python evaluate.py task=NeuroMechFly +controller=zero +mode=grid num_envs=1024 > grid_zero.json
    python scripts/command_grid.py grid.json --reference grid_zero.json --out docs/command_grid

writes <out>.md (one row per commanded forward speed and yaw rate: measured speed and yaw rate, tracking
errors, falls, gait), <out>.png (heat maps of the speed and yaw-rate errors over the grid) and, with
--gait, the gait-against-speed figure (step frequency, swing, duty factor and tripod coordination of
the straight-walking cells over the real-fly relations). Only the last line of each file is read
(evaluate.py prints its JSON last).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# Real flies (DeAngelis et al. 2019 eLife, linear fits of their data; fly-locomotion notes):
REAL_FREQUENCY = (3.3, 0.47)  # Hz, Hz per mm/s
REAL_DUTY = ((8.0, 0.79), (28.0, 0.51))  # (speed mm/s, duty factor) at the ends of the fit
REAL_SWING_S = (0.030, 0.050)


def load(path: str) -> dict:
    text = Path(path).read_text().strip().splitlines()
    if not text:
        raise SystemExit(f"error: {path} is empty (allowed: the JSON line evaluate.py +mode=grid prints)")
    summary = json.loads(text[-1])
    if "cells" not in summary:
        raise SystemExit(f"error: {path} has no grid cells (allowed: the output of evaluate.py +mode=grid)")
    return summary


def grid(summary: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    speeds = sorted({c["cmd_speed_mm_s"] for c in summary["cells"]})
    yaws = sorted({c["cmd_yaw_rate_rad_s"] for c in summary["cells"]})
    values = np.full((len(speeds), len(yaws)), np.nan)
    for c in summary["cells"]:
        value = c.get(key)
        cell = speeds.index(c["cmd_speed_mm_s"]), yaws.index(c["cmd_yaw_rate_rad_s"])
        values[cell] = np.nan if value is None else value
    return np.array(speeds), np.array(yaws), values


def fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(summary: dict, reference: dict | None) -> str:
    ref = {(c["cmd_speed_mm_s"], c["cmd_yaw_rate_rad_s"]): c for c in (reference or {}).get("cells", [])}
    head = ("| forward cmd (mm/s) | yaw cmd (rad/s) | speed (mm/s) | yaw rate (rad/s) | speed error | yaw error "
            "| falls | step freq (Hz) | swing (ms) | duty | tripod |")
    if ref:
        head += " reference alone: speed error | yaw error |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in summary["cells"]:
        swing = c.get("swing_duration_s")
        row = (f"| {c['cmd_speed_mm_s']:g} | {c['cmd_yaw_rate_rad_s']:+g} | {fmt(c['forward_speed_mm_s'])} | "
               f"{fmt(c['yaw_rate_rad_s'])} | {fmt(c['speed_tracking_error_mm_s'])} | "
               f"{fmt(c['yaw_tracking_error_rad_s'])} | {c['fall_rate']:.1%} | {fmt(c['step_frequency_hz'], 1)} | "
               f"{fmt(None if swing is None else 1000 * swing, 0)} | {fmt(c['duty_factor'])} | "
               f"{fmt(c['tripod_coordination'])} |")
        r = ref.get((c["cmd_speed_mm_s"], c["cmd_yaw_rate_rad_s"]))
        if ref:
            row += (f" {fmt(r['speed_tracking_error_mm_s'])} | {fmt(r['yaw_tracking_error_rad_s'])} |" if r
                    else " - | - |")
        lines.append(row)
    return "\n".join(lines) + "\n"


def heatmaps(summary: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    for ax, (key, label, limit) in zip(axes, (("speed_tracking_error_mm_s", "speed error (mm/s)", 1.5),
                                             ("yaw_tracking_error_rad_s", "yaw-rate error (rad/s)", 0.25))):
        speeds, yaws, values = grid(summary, key)
        image = ax.imshow(values, origin="lower", cmap="viridis", vmin=0, vmax=2 * limit, aspect="auto")
        ax.set_xticks(range(len(yaws)), [f"{y:+g}" for y in yaws])
        ax.set_yticks(range(len(speeds)), [f"{s:g}" for s in speeds])
        ax.set_xlabel("commanded yaw rate (rad/s)")
        ax.set_ylabel("commanded forward speed (mm/s)")
        for i in range(len(speeds)):
            for j in range(len(yaws)):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] < limit else "black")
        ax.set_title(f"{label}; target mean <= {limit:g}")
        fig.colorbar(image, ax=ax, shrink=0.85)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def gait_figure(series: list[tuple[str, dict]], path: str) -> None:
    """Step frequency, swing, duty factor and tripod coordination of the straight-walking cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), dpi=120)
    v = np.linspace(5, 30, 50)
    f0, f1 = REAL_FREQUENCY
    axes[0].plot(v, f0 + f1 * v, "k-", label="real flies: 3.3 + 0.47 v")
    axes[0].fill_between(v, 0.75 * (f0 + f1 * v), 1.25 * (f0 + f1 * v), color="0.85", label="+-25 %")
    axes[1].axhspan(1000 * REAL_SWING_S[0], 1000 * REAL_SWING_S[1], color="0.85", label="real flies: 30-50 ms")
    (v0, d0), (v1, d1) = REAL_DUTY
    axes[2].plot([v0, v1], [d0, d1], "k-", label="real flies (DeAngelis 2019)")
    axes[3].axhline(0.6, color="k", ls="--", label="target >= 0.6 from 15 mm/s")
    for (label, summary), marker in zip(series, ("o-", "s--", "^:")):
        cells = sorted((c for c in summary["cells"] if c["cmd_yaw_rate_rad_s"] == 0 and c["cmd_speed_mm_s"] > 0),
                       key=lambda c: c["cmd_speed_mm_s"])
        speed = [c["cmd_speed_mm_s"] for c in cells]
        swing = [np.nan if c["swing_duration_s"] is None else 1000 * c["swing_duration_s"] for c in cells]
        for ax, values in zip(axes, ([c["step_frequency_hz"] for c in cells], swing,
                                     [c["duty_factor"] for c in cells], [c["tripod_coordination"] for c in cells])):
            ax.plot(speed, values, marker, label=label)
    for ax, ylabel in zip(axes, ("step frequency (Hz)", "swing duration (ms)", "duty factor", "tripod coordination")):
        ax.set_xlabel("commanded forward speed (mm/s)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    axes[1].set_ylim(0, 80)
    axes[2].set_ylim(0.3, 1.0)
    axes[3].set_ylim(-0.1, 1.0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", help="evaluate.py +mode=grid output of the policy")
    parser.add_argument("--reference", help="the same grid with +controller=zero (the gait reference alone)")
    parser.add_argument("--out", default="command_grid", help="writes <out>.md and <out>.png")
    parser.add_argument("--gait", help="also write the gait-against-speed figure here (e.g. docs/gait_vs_speed.png)")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    summary = load(args.grid)
    reference = load(args.reference) if args.reference else None
    title = args.title or (f"{summary.get('controller')} on {summary.get('physics_engine')}, "
                           f"{summary.get('num_envs')} worlds")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(table(summary, reference))
    heatmaps(summary, f"{args.out}.png", title)
    written = [f"{args.out}.md", f"{args.out}.png"]
    if args.gait:
        series = [("policy", summary)] + ([("reference alone (zero actions)", reference)] if reference else [])
        gait_figure(series, args.gait)
        written.append(args.gait)
    print(f"wrote {', '.join(written)}; mean speed error {summary['speed_tracking_error_mm_s']} mm/s, "
          f"yaw-rate error {summary['yaw_tracking_error_rad_s']} rad/s, falls {summary['fall_rate']:.2%}")


if __name__ == "__main__":
    main()
