"""Runs train.py once per argument list, one after the other in this one process, as `python train.py ...` runs
it (its `__main__` block), and prints one JSON list: per run its exit code, stderr and stdout (a traceback that
escapes train.py lands in its stderr). Bad-input tests use it so that 40 runs share one interpreter start.

    python tests/train_many.py '[["task=NeuroMechFly", "num_envs=-3"], ...]'     (in the folder the runs use)
"""
import contextlib
import io
import json
import os
import runpy
import sys
import traceback

TRAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")


def main() -> None:
    sys.path.insert(0, os.path.dirname(TRAIN))
    results = []
    for args in json.loads(sys.argv[1]):
        err, out = io.StringIO(), io.StringIO()
        sys.argv = [TRAIN, *args]
        code = 0
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                runpy.run_path(TRAIN, run_name="__main__")
            except SystemExit as exc:  # what the interpreter would do with it
                if isinstance(exc.code, int) or exc.code is None:
                    code = exc.code or 0
                else:
                    code = 1
                    print(exc.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 (reported as the interpreter would)
                code = 1
                traceback.print_exc()
        results.append({"args": args, "returncode": code, "stderr": err.getvalue(), "stdout": out.getvalue(),
                        "runs_folder": os.path.exists("runs")})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
