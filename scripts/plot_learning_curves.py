"""Learning curves from a training run's TensorBoard summaries: mean reward and mean forward speed,
against env steps and against wall time, as one PNG per quantity.

    python scripts/plot_learning_curves.py runs/NeuroMechFly/summaries --out docs/learning
    python scripts/plot_learning_curves.py runs/A/summaries runs/B/summaries --label A --label B --out docs/compare

writes <out>_reward.png and <out>_forward_speed.png. Wall time is counted from the run's first summary.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CURVES = {  # output suffix -> (TensorBoard tag, y-axis label)
    "reward": ("rewards/step", "mean episode reward"),
    "forward_speed": ("Episode/forward_speed_mm_s", "mean forward speed (mm/s)"),
}


def read_scalars(summaries: Path, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, wall seconds since the first summary, values) of one tag in a summaries folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not summaries.is_dir():
        raise SystemExit(f"error: {summaries} is not a folder of TensorBoard summaries (runs/<experiment>/summaries)")
    acc = EventAccumulator(str(summaries), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        raise SystemExit(f"error: {summaries} has no '{tag}' summaries (tags there: {', '.join(acc.Tags()['scalars'][:8])})")
    events = acc.Scalars(tag)
    first = min(e.wall_time for e in acc.Scalars(acc.Tags()["scalars"][0]))
    steps = np.array([e.step for e in events], dtype=float)
    wall = np.array([e.wall_time - first for e in events])
    return steps, wall, np.array([e.value for e in events])


def plot(runs: list[tuple[str, Path]], out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for suffix, (tag, ylabel) in CURVES.items():
        fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110, sharey=True)
        for label, summaries in runs:
            steps, wall, values = read_scalars(summaries, tag)
            by_steps.plot(steps / 1e6, values, label=label)
            by_time.plot(wall / 60.0, values, label=label)
        by_steps.set_xlabel("env steps (millions)")
        by_time.set_xlabel("wall time (minutes)")
        by_steps.set_ylabel(ylabel)
        for ax in (by_steps, by_time):
            ax.grid(alpha=0.3)
        if len(runs) > 1 or runs[0][0]:
            by_steps.legend()
        fig.tight_layout()
        path = f"{out}_{suffix}.png"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="runs/<experiment>/summaries folders")
    parser.add_argument("--label", action="append", default=[], help="legend label per folder, in order")
    parser.add_argument("--out", default="docs/learning", help="output prefix (default: docs/learning)")
    args = parser.parse_args()
    if args.label and len(args.label) != len(args.summaries):
        raise SystemExit(f"error: {len(args.label)} --label for {len(args.summaries)} summaries folders; give one per folder")
    labels = args.label or [""] * len(args.summaries)
    for path in plot(list(zip(labels, args.summaries)), args.out):
        print(path)


if __name__ == "__main__":
    main()
