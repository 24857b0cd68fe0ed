"""Pictures of the fly for README and docs: one frame, or a filmstrip (a row of frames from one
rollout of world 0) composited into one PNG, from the camera that follows the fly.

    python scripts/render_filmstrip.py --frames 1 --out docs/standing_fly.png           # the standing fly
    python scripts/render_filmstrip.py --out docs/filmstrip.png                         # zero actions
    python scripts/render_filmstrip.py --checkpoint checkpoints/NeuroMechFly_walk.pth --out docs/filmstrip.png

With --checkpoint the policy acts deterministically (the mean action), loaded by rl_games' player
exactly as `train.py test=True` loads it (same network config, observation normaliser and
checkpoint checks). Without one, every action is 0: joint targets at the standing pose.
Further arguments are train.py's Hydra overrides, e.g. the network a checkpoint was trained with
(train.params.network.mlp.units=[512,256,128]) or the reset noise (0 here unless given, so that
frame 0 is the standing keyframe). Runs on the CPU engine unless sim_device/rl_device are given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, also when it is not pip-installed

DEFAULTS = {"task": "NeuroMechFly", "sim_device": "cpu", "rl_device": "cpu", "num_envs": "1", "headless": "True",
            "task.env.resetJointNoise": "0", "task.env.resetYawNoise": "0"}


def compose_config(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from runner.config import register_resolvers

    register_resolvers()
    given = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    defaults = [f"{k}={v}" for k, v in DEFAULTS.items() if k not in given]
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        return compose(config_name="config", overrides=[*defaults, *overrides])


def make_policy(cfg, env, checkpoint: str | None):
    """actions(obs) -> actions: the checkpoint's deterministic policy, or zeros."""
    import torch

    if checkpoint is None:
        return lambda obs: torch.zeros((env.num_envs, env.num_actions), device=env.rl_device)
    from rl_games.torch_runner import Runner

    from runner.config import divisor_at_most, to_dict
    from runner.checkpoints import action_meaning
    from runner.rl_games_glue import (check_checkpoint, patch_rl_games_checkpoint_io, register_agents,
                                      register_env)

    check_checkpoint(checkpoint, env.num_obs, env.num_actions, action_meaning(env))
    patch_rl_games_checkpoint_io()
    register_env(lambda: env)
    rlg = to_dict(cfg.train)
    config = rlg["params"]["config"]
    config["minibatch_size"] = divisor_at_most(config["horizon_length"] * env.num_envs, config["minibatch_size"])
    runner = Runner()
    register_agents(runner, None)
    runner.load(rlg)
    player = runner.create_player()
    player.restore(checkpoint)
    player.has_batch_dimension = True  # obs is (num_envs, num_obs)
    return lambda obs: player.get_action(obs, is_deterministic=True)


def filmstrip(frames, labels, gap: int = 4):
    """Frames side by side on white, each labelled in its top-left corner."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=max(10, frames[0].shape[0] // 16))
    except TypeError:  # Pillow < 10.1: one fixed size
        font = ImageFont.load_default()
    h, w = frames[0].shape[:2]
    strip = Image.new("RGB", (len(frames) * w + (len(frames) - 1) * gap, h), "white")
    draw = ImageDraw.Draw(strip)
    for i, (frame, label) in enumerate(zip(frames, labels)):
        x = i * (w + gap)
        strip.paste(Image.fromarray(frame), (x, 0))
        if label:
            draw.text((x + 6, 4), label, fill=(40, 40, 40), font=font)
    return strip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint",
                        help="rl_games checkpoint (.pth) to run deterministically; default: zero actions")
    parser.add_argument("--out", default="docs/filmstrip.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=6, help="frames in the strip; 1: a single picture (default: 6)")
    parser.add_argument("--every", type=int, default=10, help="control steps between frames (default: 10)")
    parser.add_argument("--width", type=int, help="frame width (default: 640 for one frame, 320 for a strip)")
    parser.add_argument("--height", type=int, help="frame height (default: 480 for one frame, 240 for a strip)")
    parser.add_argument("overrides", nargs="*", help="train.py Hydra overrides")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.every < 1:
        parser.error("--frames and --every must be >= 1")
    single = args.frames == 1
    width = args.width or (640 if single else 320)
    height = args.height or (480 if single else 240)

    try:
        import torch

        from runner.config import set_seed, to_dict
        from runner.video import WorldRenderer, world_fields, world_qpos
        from tasks import isaacgym_task_map

        cfg = compose_config(args.overrides)
        set_seed(cfg.seed, cfg.torch_deterministic)
        env = isaacgym_task_map[cfg.task_name](cfg=to_dict(cfg.task), rl_device=cfg.rl_device,
                                              sim_device=cfg.sim_device, graphics_device_id=cfg.graphics_device_id,
                                              headless=True)
        policy = make_policy(cfg, env, args.checkpoint)
        renderer = WorldRenderer(env.physics.model, width, height)
        obs = env.reset()["obs"]
        frames, labels, ended = [renderer.render(world_qpos(env), world_fields(env))], ["t = 0.00 s"], None
        for step in range(1, (args.frames - 1) * args.every + 1):
            with torch.no_grad():
                obs, _, done, _ = env.step(policy(obs))
            obs = obs["obs"]
            if ended is None and bool(done[0]):
                ended = step  # a new episode starts: later frames show a reset fly
            if step % args.every == 0:
                frames.append(renderer.render(world_qpos(env), world_fields(env)))
                labels.append(f"t = {step * env.dt:.2f} s")
        renderer.close()
    except (ValueError, ImportError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = filmstrip(frames, [None] if single else labels)
    image.save(out, optimize=True)
    what = f"policy {args.checkpoint}" if args.checkpoint else "zero actions"
    print(f"wrote {out} ({len(frames)} frame{'s' * (not single)}, {image.width}x{image.height}; {what})")
    if ended is not None:
        print(f"note: world 0's episode ended at step {ended} ({ended * env.dt:.2f} s); later frames show the "
              "next episode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
