"""Learning curves from a training run's TensorBoard summaries, against env steps and training time,
one PNG per quantity.

    python scripts/plot_learning_curves.py runs/NeuroMechFly_walk/summaries --out docs/learning
    python scripts/plot_learning_curves.py runs/Ant/summaries --curve reward=rewards/step:reward --out docs/ant
    python scripts/plot_learning_curves.py runs/A/summaries runs/B/summaries --label A --label B --out docs/compare

writes <out>_<name>.png per curve (default: reward, speed error, yaw-rate error, forward speed).
A folder may hold the summaries of several sessions of one run (a run resumed with checkpoint=...):
training time counts from the run's first summary and leaves out the pauses between sessions (gaps
between summaries longer than --max-gap seconds); the time each session spent starting up (kernel
compilation, ~1.5 min on an H100) before its first summary is not in it either.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CURVES = {  # name -> (TensorBoard tag, y-axis label)
    "reward": ("rewards/step", "mean episode reward"),
    "speed_error": ("Episode/speed_error_mm_s", "forward-speed error (mm/s)"),
    "yaw_error": ("Episode/yaw_rate_error_rad_s", "yaw-rate error (rad/s)"),
    "forward_speed": ("Episode/forward_speed_mm_s", "mean forward speed (mm/s)"),
}


def read_scalars(summaries: Path, tag: str, max_gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, training seconds since the first summary, values) of one tag in a summaries folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not summaries.is_dir():
        raise SystemExit(f"error: {summaries} is not a folder of TensorBoard summaries (runs/<experiment>/summaries)")
    times, values, steps = [], [], []
    for events_file in sorted(summaries.glob("events.out.tfevents.*")):  # one file per session
        acc = EventAccumulator(str(events_file), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            for e in acc.Scalars(tag):
                times.append(e.wall_time)
                steps.append(e.step)
                values.append(e.value)
    if not values:
        raise SystemExit(f"error: {summaries} has no '{tag}' summaries")
    order = np.argsort(times)
    times, steps, values = np.array(times)[order], np.array(steps, float)[order], np.array(values)[order]
    gaps = np.diff(times, prepend=times[0])
    training = np.cumsum(np.where(gaps > max_gap, 0.0, gaps))
    return steps, training, values


def plot(runs: list[tuple[str, Path]], curves: dict, out: str, max_gap: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, (tag, ylabel) in curves.items():
        fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110, sharey=True)
        for label, summaries in runs:
            steps, seconds, values = read_scalars(summaries, tag, max_gap)
            by_steps.plot(steps / 1e6, values, label=label)
            by_time.plot(seconds / 60.0, values, label=label)
        by_steps.set_xlabel("env steps (millions)")
        by_time.set_xlabel("training time since the first epoch (minutes)")
        by_steps.set_ylabel(ylabel)
        for ax in (by_steps, by_time):
            ax.grid(alpha=0.3)
        if len(runs) > 1 or runs[0][0]:
            by_steps.legend()
        fig.tight_layout()
        path = f"{out}_{name}.png"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def parse_curve(text: str) -> tuple[str, tuple[str, str]]:
    name, _, rest = text.partition("=")
    tag, _, label = rest.partition(":")
    if not name or not tag:
        raise SystemExit(f"error: --curve {text} is not allowed (allowed: name=tensorboard/tag:axis label)")
    return name, (tag, label or tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="runs/<experiment>/summaries folders")
    parser.add_argument("--label", action="append", default=[], help="legend label per folder, in order")
    parser.add_argument("--curve", action="append", default=[], help="name=tag:label (default: the fly's curves)")
    parser.add_argument("--out", default="docs/learning", help="output prefix (default: docs/learning)")
    parser.add_argument("--max-gap", type=float, default=120.0, help="seconds between summaries that count as a pause")
    args = parser.parse_args()
    if args.label and len(args.label) != len(args.summaries):
        raise SystemExit(f"error: {len(args.label)} --label for {len(args.summaries)} summaries folders "
                         "(allowed: one per folder)")
    curves = dict(parse_curve(c) for c in args.curve) if args.curve else CURVES
    labels = args.label or [""] * len(args.summaries)
    for path in plot(list(zip(labels, args.summaries)), curves, args.out, args.max_gap):
        print(path)


if __name__ == "__main__":
    main()
