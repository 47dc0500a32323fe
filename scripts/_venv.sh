# Sourced by the other scripts: create or reuse the project's virtual
# environment in .venv and install the package into it with the extras below,
# pinned to requirements/constraints.txt. The install is skipped while a stamp
# shows that neither the constraints, the package metadata nor the extras
# changed since the last one.
# Sets: repo (the checkout), python (the environment's interpreter).

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="$venv/bin/python"
stamp="$venv/.avalanche-nispa-installed"
# test: the test suite; ray: --executor ray, whose tests then run too
extras="test,ray"

if ! "$python" -c "import sys" >/dev/null 2>&1; then
    base="${PYTHON:-python3}"
    if ! "$base" -c "import sys; sys.exit(sys.version_info < (3, 10))" 2>/dev/null; then
        echo "error: Python 3.10 or newer is needed; set PYTHON=/path/to/python3.x" >&2
        exit 1
    fi
    echo "Creating the virtual environment $venv ..." >&2
    "$base" -m venv --clear "$venv"
fi

wanted="$("$python" -c 'import hashlib, sys
files = b"".join(open(f, "rb").read() for f in sys.argv[2:])
print(hashlib.sha256(files + b"[" + sys.argv[1].encode() + b"]").hexdigest())' \
    "$extras" "$repo/requirements/constraints.txt" "$repo/setup.cfg" "$repo/pyproject.toml")"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing avalanche-nispa and its pinned dependencies into $venv" \
         "(the first time takes a few minutes) ..." >&2
    rm -f "$stamp"
    log="$venv/pip-install.log"
    if ! "$python" -m pip install --progress-bar off \
        -c "$repo/requirements/constraints.txt" -e "$repo[$extras]" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error: the installation failed; the whole log is in $log" >&2
        exit 1
    fi
    echo "$wanted" > "$stamp"
fi
