"""Export the deterministic policy of an rl_games continuous-PPO checkpoint to ONNX.

    python scripts/export_onnx.py --checkpoint checkpoints/NeuroMechFly_walk.pth --out policy.onnx
    python scripts/export_onnx.py --checkpoint runs/NeuroMechFly/nn/NeuroMechFly.pth --out policy.onnx
    python scripts/export_onnx.py --checkpoint PATH --config runs/NeuroMechFly/config.yaml --out policy.onnx

The ONNX model takes the task's raw observation vector `obs` (float32, [batch, num_obs], any batch)
and returns `actions` (float32, [batch, num_actions]) in [-1, 1]: the network's mean action `mus`,
clamped, as `analysis.evaluation.PolicyActor` and rl_games' deterministic player give it. Everything
between is in the graph: the task's observation clipping (`task.env.clipObservations`, as VecTask
applies it), rl_games' running mean/std normalisation with its clip of the normalised input to +-5,
the MLP and the clamp. No sampling, no value head, no training-only op.

The network comes from the train config the checkpoint was trained with (`train.params`):
`--config PATH`, else `<checkpoint stem>.yaml` beside the checkpoint (the shipped checkpoints), else
the run's `config.yaml` above its `nn/` folder. The file also carries the task's name and config in
its metadata (`task`, `task_config` as JSON, `num_obs`, `num_actions`, ...), so that a controller
such as analysis/onnx_policy.py can rebuild the observation code from the file alone.

Exported with torch.onnx's dynamo exporter (torch.export; the TorchScript exporter is deprecated) at
opset 18, then checked with onnx.checker and compared with the torch policy in onnxruntime on a batch
of observations; the output is written only when the largest difference is within 1e-5. A bad path,
config or checkpoint is one line starting `error:` (exit status 1).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, also when it is not pip-installed

from runner.checkpoints import CheckpointError  # noqa: E402

OPSET = 18
TOLERANCE = 1e-5
INPUT_NAME, OUTPUT_NAME = "obs", "actions"
# rl_games continuous models whose network's first output is the mean action (`mus`)
CONTINUOUS_MODELS = ("continuous_a2c_logstd", "continuous_a2c_tanh")
CONFIG_HELP = ("allowed: the resolved train config of the checkpoint's run: runs/<experiment>/config.yaml, "
               "or <checkpoint stem>.yaml beside it")


class ExportError(ValueError):
    """A path, config or checkpoint that cannot be exported (one line)."""


def find_config(checkpoint: str, config: str | None) -> Path:
    """The train config: `config` if given, else `<stem>.yaml` beside the checkpoint, else the run's
    config.yaml above the checkpoint's nn/ folder."""
    if config:
        path = Path(config)
        if not path.is_file():
            raise ExportError(f"config={config} does not exist ({CONFIG_HELP})")
        return path
    ckpt = Path(checkpoint)
    candidates = [ckpt.with_suffix(".yaml"), Path(os.path.normpath(ckpt.parent / ".." / "config.yaml"))]
    for path in candidates:
        if path.is_file():
            return path
    raise ExportError(f"no train config for checkpoint={checkpoint}: neither {candidates[0]} nor {candidates[1]} "
                      f"exists (pass --config PATH; {CONFIG_HELP})")


def load_config(path: Path) -> dict:
    """The resolved config as a dict, checked for what the export reads."""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"config={path} is not a readable YAML file ({reason}; {CONFIG_HELP})") from None
    params = (cfg.get("train") or {}).get("params") if isinstance(cfg, dict) else None
    network = params.get("network") if isinstance(params, dict) else None
    if not isinstance(network, dict) or not isinstance(params.get("config"), dict):
        raise ExportError(f"config={path} has no train.params.network and train.params.config ({CONFIG_HELP})")
    model = (params.get("model") or {}).get("name")
    if model not in CONTINUOUS_MODELS:
        raise ExportError(f"config={path}: train.params.model.name={model!r} is not supported "
                          f"(allowed: {', '.join(CONTINUOUS_MODELS)}, rl_games' continuous PPO policies)")
    if network.get("name") != "actor_critic" or network.get("rnn") or network.get("cnn"):
        raise ExportError(f"config={path}: train.params.network (name={network.get('name')!r}"
                          f"{', rnn' if network.get('rnn') else ''}{', cnn' if network.get('cnn') else ''}) is not "
                          "supported (allowed: rl_games' actor_critic MLP without rnn or cnn)")
    task = cfg.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("env"), dict):
        raise ExportError(f"config={path} has no task.env section ({CONFIG_HELP})")
    return cfg


def task_name(cfg: dict, path: Path) -> str:
    from tasks import isaacgym_task_map

    name = cfg.get("task_name") or cfg["task"].get("name")
    if name not in isaacgym_task_map:
        raise ExportError(f"config={path}: task_name={name!r} is not a task of this project "
                          f"(allowed: {', '.join(sorted(isaacgym_task_map))})")
    return name


def declared_size(name: str, cfg: dict, key: str, constant: str) -> int | None:
    """A size the task declares without being built: `task.env.<key>` (IsaacGymEnvs' numObservations /
    numActions), what the task class derives from its config (`declared_sizes`: NeuroMechFly's observation
    history and adhesion change its sizes), or a `<constant>` of the task's module or package (Ant's NUM_OBS)."""
    value = cfg["task"]["env"].get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    from common.checks import ConfigError
    from tasks import isaacgym_task_map

    task = isaacgym_task_map[name]
    if hasattr(task, "declared_sizes"):
        try:
            return task.declared_sizes(cfg["task"]).get(key)
        except ConfigError as exc:
            raise ExportError(f"config: {exc}") from None
    module = task.__module__
    for mod in (module, module.rpartition(".")[0]):
        if mod and isinstance(getattr(importlib.import_module(mod), constant, None), int):
            return getattr(importlib.import_module(mod), constant)
    return None


def checkpoint_sizes(state: dict, path: str) -> tuple[int, int]:
    """Observation and action sizes from the weights themselves."""
    model = state["model"]
    mu = model.get("a2c_network.mu.weight")
    first = model.get("a2c_network.actor_mlp.0.weight")
    mean = model.get("running_mean_std.running_mean")
    if mu is None or mu.dim() != 2 or first is None or first.dim() != 2:
        raise ExportError(f"checkpoint={path} is not an rl_games continuous MLP policy (no a2c_network.mu and "
                          "actor_mlp weights; allowed: a checkpoint of a2c_continuous with an actor_critic MLP)")
    return int(mean.shape[-1] if mean is not None else first.shape[1]), int(mu.shape[0])


def clip_observations(cfg: dict, path: Path) -> float:
    """task.env.clipObservations as VecTask reads it (absent: no clipping)."""
    from common.checks import ConfigError
    from tasks.base.vec_task import BaseEnvConfig

    env = dict(cfg["task"]["env"])
    env.setdefault("numEnvs", 1)
    if not isinstance(env["numEnvs"], int):
        env["numEnvs"] = 1
    try:
        return BaseEnvConfig.parse(env).clip_obs
    except ConfigError as exc:
        raise ExportError(f"config={path}: {exc}") from None


def load_policy(checkpoint: str, config: str | None = None):
    """Everything the export needs: the torch reference (PolicyActor), the module to export and the
    metadata for the file."""
    from analysis.evaluation import PolicyActor
    from runner.checkpoints import check_checkpoint, read_checkpoint

    state = read_checkpoint(checkpoint)  # checks the path first: a bad checkpoint is named before the config
    cfg_path = find_config(checkpoint, config)
    cfg = load_config(cfg_path)
    name = task_name(cfg, cfg_path)
    num_obs, num_actions = checkpoint_sizes(state, checkpoint)
    want_obs = declared_size(name, cfg, "numObservations", "NUM_OBS")
    want_actions = declared_size(name, cfg, "numActions", "NUM_ACTIONS")
    state = check_checkpoint(checkpoint, want_obs or num_obs, want_actions or num_actions)
    params = cfg["train"]["params"]
    try:
        actor = PolicyActor(params, state, num_obs, num_actions, torch.device("cpu"))
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in reason[:2])[:200] if reason else type(exc).__name__
        raise ExportError(f"checkpoint={checkpoint} does not fit the network of config={cfg_path} ({reason}) "
                          "(allowed: the config the checkpoint was trained with)") from None
    clip_obs = clip_observations(cfg, cfg_path)
    policy = DeterministicPolicy(actor.model, clip_obs).eval()
    task_cfg = json.loads(json.dumps(cfg["task"]))  # plain JSON data
    metadata = {
        "task": name, "num_obs": str(num_obs), "num_actions": str(num_actions),
        "clip_observations": repr(clip_obs), "normalize_input": str(bool(policy.normalizer is not None)),
        "checkpoint": os.path.basename(checkpoint), "config": str(cfg_path),
        "train_params_model": params["model"]["name"], "task_config": json.dumps(task_cfg, sort_keys=True),
    }
    return actor, policy, metadata, num_obs, num_actions, clip_obs


class DeterministicPolicy(torch.nn.Module):
    """obs -> clamp(obs, +-clip_obs) -> rl_games' RunningMeanStd (eval) -> actor MLP -> mu -> clamp(-1, 1).

    rl_games keeps its normaliser as a TorchScript module, which torch.export cannot trace; this holds
    the same RunningMeanStd class unscripted with the checkpoint's statistics, so the graph is rl_games'
    own normalisation (with its +-5 clip of the normalised input). The actor is rl_games' own network
    (`model.a2c_network`, built by PolicyActor); its value head and sigma are not outputs, so the
    exporter drops them."""

    def __init__(self, model, clip_obs: float):
        super().__init__()
        from rl_games.algos_torch.running_mean_std import RunningMeanStd

        self.normalizer = None
        if model.normalize_input:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its size
                self.normalizer = RunningMeanStd(model.obs_shape)
            self.normalizer.load_state_dict(model.running_mean_std.state_dict())
            self.normalizer.eval()
        self.a2c_network = model.a2c_network
        self.clip_obs = clip_obs

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if math.isfinite(self.clip_obs):
            obs = obs.clamp(-self.clip_obs, self.clip_obs)
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        mu = self.a2c_network({"obs": obs})[0]
        return mu.clamp(-1.0, 1.0)


def export(policy, num_obs: int, out: str, metadata: dict) -> None:
    """torch.onnx.export (dynamo, opset 18, dynamic batch), metadata added, checked by onnx.checker."""
    import onnx

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
    example = torch.zeros((4, num_obs))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(policy, (example,), out, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
                          dynamic_shapes={"obs": {0: torch.export.Dim("batch")}})
    model = onnx.load(out)
    model.doc_string = (f"{metadata['task']} policy (rl_games, deterministic): {INPUT_NAME} [batch, "
                        f"{metadata['num_obs']}] raw observations -> {OUTPUT_NAME} [batch, "
                        f"{metadata['num_actions']}] in [-1, 1]")
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)


def comparison_observations(policy, num_obs: int, count: int = 256, seed: int = 0) -> torch.Tensor:
    """Observations to compare on: around the normaliser's running mean (a few standard deviations, as
    the task produces them; standard normal without a normaliser), plus zeros and, where the graph
    bounds its input (the observation clip or the normaliser's), rows of +-1e3."""
    g = torch.Generator().manual_seed(seed)
    if policy.normalizer is not None:
        mean = policy.normalizer.running_mean.float()
        std = policy.normalizer.running_var.float().sqrt()
        obs = mean + 2.0 * std * torch.randn((count, num_obs), generator=g)
    else:
        obs = torch.randn((count, num_obs), generator=g)
    rows = [obs, torch.zeros((1, num_obs))]
    if policy.normalizer is not None or math.isfinite(policy.clip_obs):
        rows += [torch.full((1, num_obs), 1e3), torch.full((1, num_obs), -1e3)]
    return torch.cat(rows)


def max_error(path: str, actor, obs, clip_obs: float) -> float:
    """Largest |onnxruntime - torch| over `obs`; torch is PolicyActor on the observations as the task
    hands them to rl_games (clipped to clipObservations)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = actor(obs.clamp(-clip_obs, clip_obs) if math.isfinite(clip_obs) else obs).numpy()
    error = 0.0
    for rows in (slice(None), slice(0, 1)):  # the whole batch, and batch 1
        got = session.run([OUTPUT_NAME], {INPUT_NAME: obs[rows].numpy().astype(np.float32)})[0]
        if got.shape != want[rows].shape:
            raise ExportError(f"onnxruntime gave actions of shape {got.shape}, torch {want[rows].shape}")
        error = max(error, float(np.abs(got - want[rows]).max()))
    return error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="rl_games .pth checkpoint")
    parser.add_argument("--out", help="ONNX file to write (default: the checkpoint's path with .onnx)")
    parser.add_argument("--config", help="the train config the checkpoint was trained with (default: "
                                         "<checkpoint stem>.yaml beside it, else ../config.yaml of its nn/ folder)")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.checkpoint).with_suffix(".onnx"))
    try:
        for module in ("onnx", "onnxruntime", "onnxscript"):
            if importlib.util.find_spec(module) is None:
                raise ExportError(f"the {module} package is not installed (allowed: pip install -e '.[onnx]')")
        out_dir = Path(out).resolve().parent
        if not out_dir.is_dir():
            raise ExportError(f"out={out}: folder {out_dir} does not exist (allowed: a path in an existing folder)")
        actor, policy, metadata, num_obs, num_actions, clip_obs = load_policy(args.checkpoint, args.config)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".onnx")
        os.close(fd)
        try:
            export(policy, num_obs, tmp, metadata)
            obs = comparison_observations(policy, num_obs)
            error = max_error(tmp, actor, obs, clip_obs)
            print(f"onnxruntime vs torch (PolicyActor): max abs error {error:.3g} over {len(obs)} observations")
            if not error <= TOLERANCE:
                raise ExportError(f"onnxruntime and torch differ by {error:.3g} (allowed: at most {TOLERANCE:g}); "
                                  f"{out} not written")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (ExportError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {metadata['task']} policy, obs [batch, {num_obs}] -> actions [batch, {num_actions}] "
          f"in [-1, 1], opset {OPSET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
