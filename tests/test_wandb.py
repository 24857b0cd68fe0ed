"""wandb_activate=True: train.py logs the run to Weights & Biases the IsaacGymEnvs way (an rl_games
observer starts the run before the SummaryWriter exists, sync_tensorboard=True), offline here
(WANDB_MODE=offline: no server). The offline run is read back from its `.wandb` transaction log.
Also: the one-line error without wandb, and no `import wandb` at all with wandb_activate=False."""
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from common.checks import ConfigError
from runner import wandb_logging
from runner.config import validate_config
from runner.distributed import TORCHRUN_VARIABLES

from .conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
# tests/test_train.py's tiny run: 4 worlds, 2 epochs of 8 control steps, 6-step episodes
SMALL = ["task=NeuroMechFly", "sim_device=cpu", "rl_device=cpu", "headless=True", "num_envs=4", "max_iterations=2",
         "task.env.episodeLength_s=0.006", "task.env.controlFrequencyInv=5", "train.params.config.horizon_length=8",
         "train.params.config.save_best_after=0"]
KEYS = ["wandb_activate=True", "wandb_project=p", "wandb_entity=e", "wandb_group=g", "wandb_name=n",
        "wandb_tags=[a,b]", "wandb_logcode=True"]
MISSING = "error: wandb_activate=True needs the wandb package (pip install -e .[wandb])"


def environment(**extra):
    """This process's environment without torchrun's or wandb's own variables (WANDB_PROJECT & co.
    would fill the keys left empty), offline and quiet, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in TORCHRUN_VARIABLES}
    return {**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **extra}


def train_py(args, cwd, env):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def records(path: Path):
    """The protobuf records of an offline run's .wandb file: wandb-core writes them in LevelDB's log
    format (a 7-byte header ':W&B', 0xBEE1, version; then 32 KiB blocks of chunks, each with a
    crc32/length/type header; types 1 full, 2 first, 3 middle, 4 last). wandb 0.31 ships no reader."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), (ident, magic)
    pos, parts = 7, []
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # block trailer: zero padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # preallocated, unwritten tail of the block
            pos += room
            continue
        parts.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


class OfflineRun:
    """What an offline run logged: the run record, the config, the history keys, code artifacts."""

    def __init__(self, folder: Path):
        (self.file,) = folder.glob("run-*.wandb")
        self.folder = folder
        self.config, self.history_keys, self.code, self.exit_code = {}, set(), [], None
        for record in records(self.file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
            elif kind == "config":
                for item in record.config.update:
                    key = item.key or ".".join(item.nested_key)
                    self.config[key] = json.loads(item.value_json)
            elif kind == "history":
                self.history_keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
            elif kind == "artifact" and record.artifact.type == "code":
                self.code.append(sorted(entry.path for entry in record.artifact.manifest.contents))
            elif kind == "exit":
                self.exit_code = record.exit.exit_code


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    return [OfflineRun(folder) for folder in sorted((wandb_dir / "wandb").glob("offline-run-*"))]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One short training with every wandb_* key set, WANDB_DIR given."""
    pytest.importorskip("wandb")
    cwd, wandb_dir = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("wandb")
    result = train_py([*SMALL, *KEYS], cwd, environment(WANDB_DIR=str(wandb_dir)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = offline_runs(wandb_dir)
    return cwd, wandb_dir, run


def test_wandb_keys_become_the_runs_settings(logged):
    cwd, _, run = logged
    assert (run.run.project, run.run.entity, run.run.run_group, run.run.display_name) == ("p", "e", "g", "n")
    assert list(run.run.tags) == ["a", "b"] and run.run.job_type == "train"
    assert run.exit_code == 0
    # the id is kept in the run folder, for a resumed training to continue the same W&B run
    assert (cwd / "runs" / "NeuroMechFly" / "wandb_run_id").read_text().strip() == run.run.run_id


def test_resolved_config_is_the_run_config(logged):
    cwd, _, run = logged
    written = OmegaConf.to_container(OmegaConf.load(cwd / "runs" / "NeuroMechFly" / "config.yaml"))
    assert {k: v for k, v in run.config.items() if k != "_wandb"} == written
    assert run.config["train"]["params"]["config"]["max_epochs"] == 2 and run.config["wandb_tags"] == ["a", "b"]


def test_tensorboard_scalars_are_synced(logged):
    _, _, run = logged
    for key in ("rewards/step", "rewards/iter", "episode_lengths/step", "losses/a_loss", "info/last_lr",
                "Episode/rew_alive", "Task/physics_faults"):  # rl_games' own and EpisodeLogger's
        assert key in run.history_keys, sorted(run.history_keys)


def test_logcode_saves_the_projects_py_and_yaml_files(logged):
    _, _, run = logged
    assert len(run.code) == 1, run.code
    saved = set(run.code[0])
    assert {"train.py", "runner/wandb_logging.py", "tasks/neuromechfly/task.py", "cfg/config.yaml",
            "cfg/task/NeuroMechFly.yaml", "cfg/train/NeuroMechFlyPPO.yaml"} <= saved, sorted(saved)
    assert all(path.endswith((".py", ".yaml")) for path in saved), sorted(saved)
    assert not [p for p in saved if p.startswith(("runs/", "wandb/", ".")) or "/." in p or "egg-info" in p]
    assert run.config["_wandb"]["code_path"].startswith("source-")


def test_defaults_without_logcode_and_resume(logged, tmp_path):
    """Keys left at their defaults: the project 'neuromechfly', the run named after the training
    (train.params.config.name), no group, entity or tags; wandb_logcode=False saves no code; without
    WANDB_DIR the files go to the run folder. Then training again from the checkpoint continues the
    same W&B run."""
    result = train_py([*SMALL, "wandb_activate=True"], tmp_path, environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = tmp_path / "runs" / "NeuroMechFly"
    (run,) = offline_runs(folder)
    assert (run.run.project, run.run.entity, run.run.run_group, run.run.display_name) == \
        ("neuromechfly", "", "", "NeuroMechFly")
    assert list(run.run.tags) == [] and run.code == [] and "code_path" not in run.config.get("_wandb", {})
    code_files = [p for p in run.folder.rglob("*") if p.is_file() and "code" in p.relative_to(run.folder).parts]
    assert not code_files, "wandb_logcode=False, but code was saved"
    assert "rewards/step" in run.history_keys

    result = train_py([*SMALL, "wandb_activate=True", "max_iterations=3", f"checkpoint={folder}/nn/NeuroMechFly.pth"],
                      tmp_path, environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    first, resumed = offline_runs(folder)
    assert resumed.run.run_id == first.run.run_id == run.run.run_id
    assert "rewards/step" in resumed.history_keys and resumed.exit_code == 0


def test_multi_gpu_rank_0_alone_logs(tmp_path):
    pytest.importorskip("wandb")
    wandb_dir = tmp_path / "wandb_dir"
    cwd = tmp_path / "run"
    cwd.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
               f"--log-dir={tmp_path / 'logs'}", str(ROOT / "train.py"), *SMALL, "multi_gpu=True",
               "wandb_activate=True"]
    result = subprocess.run(command, cwd=cwd, env=environment(WANDB_DIR=str(wandb_dir)), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = offline_runs(wandb_dir)
    assert len(runs) == 1, [r.folder for r in runs]
    assert "rewards/step" in runs[0].history_keys and runs[0].config["multi_gpu"] is True


def hidden_wandb(folder: Path, body: str) -> str:
    """A PYTHONPATH entry whose wandb.py stands in for the real package."""
    folder.mkdir()
    (folder / "wandb.py").write_text(body)
    return os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])


NOT_INSTALLED = 'raise ModuleNotFoundError("No module named \'wandb\'", name="wandb")\n'


@pytest.mark.parametrize("body, expected", [
    (NOT_INSTALLED, MISSING),
    ('raise ImportError("cannot import name \'x\' from \'google.protobuf\'")\n',
     "error: wandb_activate=True: import wandb failed (cannot import name 'x' from 'google.protobuf')"),
])
def test_without_wandb_is_one_line_before_anything_is_built(tmp_path, body, expected):
    env = environment(PYTHONPATH=hidden_wandb(tmp_path / "hide", body))
    cwd = tmp_path / "run"
    cwd.mkdir()
    result = train_py([*SMALL, "wandb_activate=True"], cwd, env)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip() == expected, result.stderr[-2000:]
    assert not (cwd / "runs").exists()


def test_wandb_off_never_imports_wandb(tmp_path):
    """wandb_activate=False (the default): a whole training, with a wandb.py first on the path that
    leaves a mark when imported. (Play mode with wandb_activate=True does not import it either:
    test_check.)"""
    marker = tmp_path / "imported"
    body = f"open({str(marker)!r}, 'a').write('imported\\n')\n" + NOT_INSTALLED
    cwd = tmp_path / "run"
    cwd.mkdir()
    result = train_py(SMALL, cwd, environment(PYTHONPATH=hidden_wandb(tmp_path / "hide", body)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (cwd / "runs" / "NeuroMechFly" / "nn" / "NeuroMechFly.pth").is_file()
    assert not marker.exists(), "wandb was imported"
    assert not list(cwd.rglob("wandb*"))


def test_check(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails as if it were not installed,
    # so check() returning False also shows that it did not try to import wandb
    assert wandb_logging.check(compose_config()) is False
    assert wandb_logging.check(compose_config("wandb_activate=True", "test=True")) is False  # play: nothing to log
    missing = r"^wandb_activate=True needs the wandb package \(pip install -e \.\[wandb\]\)$"
    with pytest.raises(ImportError, match=missing):
        wandb_logging.check(compose_config("wandb_activate=True"))
    for tags in ("wandb_tags=a", "wandb_tags=[a,3]", "wandb_tags=['']"):  # checked with the other values
        with pytest.raises(ConfigError, match=r"^wandb_tags=.* is not allowed \(allowed: a list of strings"):
            validate_config(compose_config("wandb_activate=True", tags))


def test_multi_observer_forwards_every_hook_in_order():
    calls = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __getattr__(self, method):
            return lambda *args: calls.append((self.name, method, args))

    class Bare:  # like EpisodeLogger: no after_clear_stats
        def after_steps(self):
            calls.append(("bare", "after_steps", ()))

    multi = wandb_logging.MultiObserver([Recorder("a"), Bare(), Recorder("b")])
    multi.before_init("base", {}, "exp")
    multi.after_init("algo")
    multi.process_infos({}, [])
    multi.after_steps()
    multi.after_clear_stats()
    multi.after_print_stats(1, 2, 3.0)
    assert [(n, m) for n, m, _ in calls] == [
        ("a", "before_init"), ("b", "before_init"), ("a", "after_init"), ("b", "after_init"),
        ("a", "process_infos"), ("b", "process_infos"), ("a", "after_steps"), ("bare", "after_steps"),
        ("b", "after_steps"), ("a", "after_clear_stats"), ("b", "after_clear_stats"), ("a", "after_print_stats"),
        ("b", "after_print_stats")]
    assert calls[0][2] == ("base", {}, "exp") and calls[-1][2] == (1, 2, 3.0)
