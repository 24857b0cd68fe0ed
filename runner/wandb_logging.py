"""Weights & Biases logging the IsaacGymEnvs way (wandb_activate=True; pip install -e .[wandb]).

An rl_games observer starts the W&B run in before_init, i.e. before rl_games creates its TensorBoard
SummaryWriter, with sync_tensorboard=True: wandb patches the writer class and streams every scalar
rl_games and EpisodeLogger write to runs/<experiment>/summaries (rewards/..., losses/...,
Episode/..., Task/...) into the run. Only the process that writes the summaries (rank 0 under
multi_gpu=True) gets the observer; the others never start a run.

The top-level keys, as wandb.init arguments ('' means wandb's own default):
    wandb_project -> project          wandb_entity -> entity      wandb_group -> group
    wandb_name    -> name             wandb_tags   -> tags        wandb_logcode -> save_code, and the
    project's *.py and *.yaml files saved as the run's code (run.log_code)
The run config is the whole resolved configuration, as in runs/<experiment>/config.yaml. The run's
files go to runs/<experiment>/wandb unless WANDB_DIR says otherwise; WANDB_MODE=offline logs
without a server (upload later with `wandb sync`). The run id is kept in
runs/<experiment>/wandb_run_id: training again with checkpoint=... resumes that W&B run, a fresh
training starts a new one.

wandb is imported only when wandb_activate=True (check() imports it, before anything is built);
play mode (test=True) logs nothing, as in IsaacGymEnvs, where players call no observer.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
MISSING = "wandb_activate=True needs the wandb package (pip install -e .[wandb])"
CODE_SUFFIXES = (".py", ".yaml")
# Folders under the repository whose files are no source of this project: run outputs, caches,
# virtual environments, wandb's own folders.
SKIPPED_DIRS = {"runs", "outputs", "multirun", "wandb", "build", "dist", "__pycache__", "node_modules",
                "site-packages", "venv", "env"}
RUN_ID_FILE = "wandb_run_id"
INIT_TRIES = 3  # IsaacGymEnvs retries wandb.init: it can fail now and then on a network hiccup

__all__ = ["MultiObserver", "WandbObserver", "check", "start"]


def check(cfg: DictConfig) -> bool:
    """Whether this run logs to W&B: wandb_activate=True and training. Checks that wandb imports (the
    wandb_* values are checked in runner/config.py); a one-line ImportError otherwise. Call it before
    building anything."""
    if not cfg.wandb_activate or cfg.test:
        return False
    try:
        import wandb  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "wandb":  # installed, but one of its own dependencies is missing
            raise ImportError(f"wandb_activate=True: import wandb failed ({exc})") from None
        raise ImportError(MISSING) from None
    except ImportError as exc:
        raise ImportError(f"wandb_activate=True: import wandb failed ({str(exc).strip().splitlines()[0]})") from None
    return True


def _or_none(value):
    return value if value not in ("", None) else None


def _is_source(path: str, root: str) -> bool:
    return path.endswith(CODE_SUFFIXES)


def _is_skipped(path: str, root: str) -> bool:
    *folders, _ = Path(os.path.relpath(path, root)).parts
    return any(part.startswith(".") or part in SKIPPED_DIRS or part.endswith(".egg-info") for part in folders)


def start(cfg: DictConfig, run_dir: str):
    """Start the W&B run for this training (wandb.init with the wandb_* keys) and return it. Must run
    before rl_games creates its SummaryWriter, or sync_tensorboard sees no event files."""
    import wandb

    run_id, resume = None, None
    id_file = os.path.join(run_dir, RUN_ID_FILE)
    if cfg.checkpoint and os.path.isfile(id_file):  # resuming the training: resume its W&B run too
        run_id, resume = Path(id_file).read_text().strip() or None, "allow"
    os.makedirs(run_dir, exist_ok=True)
    wandb_dir = None if os.environ.get("WANDB_DIR") else run_dir
    kwargs = dict(project=_or_none(cfg.wandb_project), entity=_or_none(cfg.wandb_entity),
                  group=_or_none(cfg.wandb_group), name=_or_none(cfg.wandb_name),
                  tags=list(cfg.wandb_tags) or None, dir=wandb_dir, id=run_id, resume=resume,
                  save_code=bool(cfg.wandb_logcode), sync_tensorboard=True, job_type="train")
    # rl_games writes its summaries to <run_dir>/summaries: naming that folder saves wandb from guessing
    # it (wandb-core waits 10 s at the end of the run for a root it has to guess).
    if wandb.patched["tensorboard"]:
        wandb.tensorboard.unpatch()
    wandb.tensorboard.patch(root_logdir=os.path.abspath(os.path.join(run_dir, "summaries")))
    for attempt in range(1, INIT_TRIES + 1):
        try:
            run = wandb.init(**kwargs)
            break
        except wandb.errors.CommError as exc:  # the server did not answer: try again
            if attempt == INIT_TRIES:
                raise RuntimeError(f"wandb_activate=True: wandb.init failed {INIT_TRIES} times ({_first_line(exc)}) "
                                   "(WANDB_MODE=offline logs without a server; upload later with wandb sync)") from None
            print(f"wandb.init failed ({_first_line(exc)}), trying again", flush=True)
            time.sleep(2 * attempt)
        except wandb.errors.Error as exc:  # bad settings, no API key, no access to the entity/project
            raise RuntimeError(f"wandb_activate=True: wandb.init failed ({_first_line(exc)})") from None
    run.config.update(OmegaConf.to_container(cfg, resolve=True), allow_val_change=True)
    Path(id_file).write_text(run.id + "\n")
    if cfg.wandb_logcode:
        name = wandb.util.make_artifact_name_safe(f"source-{run.project}-train.py")
        run.log_code(root=str(ROOT), name=name, include_fn=_is_source, exclude_fn=_is_skipped)
    print(f"wandb: run {run.id} ({run.name}) in project {run.project}, files in {run.dir}", flush=True)
    return run


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Observer:
    """rl_games 1.6.5's observer hooks (rl_games.common.algo_observer.AlgoObserver, plus the
    after_clear_stats its agents call), all doing nothing; rl_games duck-types observers, so this
    module imports neither rl_games nor wandb until they are used."""

    def before_init(self, base_name, config, experiment_name):
        pass

    def after_init(self, algo):
        pass

    def process_infos(self, infos, done_indices):
        pass

    def after_steps(self):
        pass

    def after_clear_stats(self):
        pass

    def after_print_stats(self, frame, epoch_num, total_time):
        pass


class WandbObserver(Observer):
    """Starts the W&B run when rl_games builds the agent, before it creates its SummaryWriter."""

    def __init__(self, cfg: DictConfig, run_dir: str):
        self.cfg = cfg
        self.run_dir = run_dir
        self.run = None

    def before_init(self, base_name, config, experiment_name):
        if self.run is None:
            self.run = start(self.cfg, self.run_dir)


class MultiObserver(Observer):
    """Several observers as one (rl_games 1.6.5 has none; IsaacGymEnvs' rlgames_utils.MultiObserver)."""

    def __init__(self, observers):
        self.observers = list(observers)

    def _call(self, method, *args):
        for observer in self.observers:
            getattr(observer, method, lambda *a: None)(*args)

    def before_init(self, base_name, config, experiment_name):
        self._call("before_init", base_name, config, experiment_name)

    def after_init(self, algo):
        self._call("after_init", algo)

    def process_infos(self, infos, done_indices):
        self._call("process_infos", infos, done_indices)

    def after_steps(self):
        self._call("after_steps")

    def after_clear_stats(self):
        self._call("after_clear_stats")

    def after_print_stats(self, frame, epoch_num, total_time):
        self._call("after_print_stats", frame, epoch_num, total_time)
