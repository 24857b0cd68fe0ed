#!/bin/bash
# Downloads the wheels that flygym 2.1.1's own MuJoCo Warp simulation needs on the GPU machine into
# .flygymwheels-1/ (mujoco 3.16.0 alone, 30 MB) and .flygymwheels-2/ (the rest, 14 MB, and install.sh), each
# one `run` call's carry beside the 25 MB tree (64 MiB in all; git-ignored through .git/info/exclude).
# Copied into one folder on the GPU machine, install.sh installs them into their own site directory
# (default /tmp/site2) for benchmarks/compare_flygym.py (run there with PYTHONPATH=/tmp/site2:/tmp/site).
#
#   bash benchmarks/prepare_flygym_wheels.sh            # from the repository root
#   on the GPU machine: carry [".flygymwheels-1"] mkdir -p /tmp/fg && cp .flygymwheels-1/* /tmp/fg/
#                       carry [".flygymwheels-2"] cp .flygymwheels-2/* /tmp/fg/
#                       after /tmp/site is installed: bash /tmp/fg/install.sh
#
# The GPU machine (Python 3.12, no network) already has numpy, scipy, numba, jaxtyping, tabulate,
# imageio, matplotlib and pillow, and /tmp/site (this project's .devwheels-1..4) has warp-lang 1.19.0
# (flygym 2.1.1's [warp] extra and mujoco-warp 3.16.0 ask for warp-lang>=1.15), etils, glfw,
# pyopengl and websockets. What is left: flygym and its MuJoCo 3.16 pair, their pure-Python
# dependencies (typing-extensions, which mujoco 3.16 imports, comes with torch there but is tiny),
# and IPython with its own: `import flygym` imports mediapy, whose __init__ imports IPython.display.
# Checked on a Python 3.12 venv holding only the GPU machine's packages above, with /tmp/site built
# from .devwheels-1..4: install.sh, then compare_flygym.py's flygym side on Warp's CPU device. The versions are the ones `uv pip install "flygym[warp]==2.1.1"` resolved on
# Python 3.12 (2026-11-25), the set the CPU smoke test of compare_flygym.py ran with.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
dir=.flygymwheels-2
big=.flygymwheels-1  # mujoco 3.16.0's wheel: with the rest, one carry would overflow
SPECS=(
  "flygym==2.1.1" "mujoco==3.16.0" "mujoco-warp==3.16.0" "absl-py==2.5.1"
  "loguru==0.7.3" "pyyaml==6.0.4" "mediapy==1.2.7"
  "ipython==9.18.1" "ipython-pygments-lexers==1.1.1" "pygments==2.21.0" "jedi==0.20.1" "parso==0.8.7"
  "matplotlib-inline==0.2.2" "traitlets==5.16.1" "pexpect==4.9.0" "ptyprocess==0.7.0"
  "prompt-toolkit==3.0.53" "wcwidth==0.9.4" "psutil==7.2.2" "stack-data==0.6.3" "executing==2.3.0"
  "asttokens==3.0.2" "pure-eval==0.2.4" "typing-extensions==4.16.0"
  "$@")
rm -rf "$dir" "$big"; mkdir -p "$dir" "$big"
for d in "$dir" "$big"; do grep -qxF "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude; done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$dir" "${SPECS[@]}"
cat > "$dir/install.sh" <<'INNER'
#!/bin/bash
# Installs flygym 2.1.1 and the packages it needs beyond the GPU machine's own and /tmp/site into
# their own site directory (SITE2, default /tmp/site2), touching neither /tmp/site nor the machine's.
# Run it from the folder both carries were copied into (its own folder's wheels are the ones installed).
# Use it with: PYTHONPATH=$SITE2:/tmp/site python3 ...
set -e
here=$(cd "$(dirname "$0")" && pwd)
site2=${SITE2:-/tmp/site2}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site2" "$here"/*.whl
PYTHONPATH="$site2:${SITE:-/tmp/site}" python3 -c "import flygym, mujoco, mujoco_warp, warp, IPython; \
print('installed in $site2: flygym', __import__('importlib.metadata').metadata.version('flygym'), \
'mujoco', mujoco.__version__, 'mujoco_warp', __import__('importlib.metadata').metadata.version('mujoco-warp'), \
'warp', warp.__version__, 'IPython', IPython.__version__)"
INNER
chmod +x "$dir/install.sh"
mv "$dir"/mujoco-3.16.0-*.whl "$big"/
du -sh "$big" "$dir"
for d in "$big" "$dir"; do
  size=$(du -sm "$d" | cut -f1)
  if [ "$size" -gt 38 ]; then echo "warning: $d is ${size} MB; a carry holds 64 MiB with your tree" >&2; fi
done
