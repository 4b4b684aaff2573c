#!/usr/bin/env bash
# The README's `make run` from a fresh clone in a new folder: no virtual environment, no dataset cache, no runs,
# no settings from elsewhere. It installs everything, the app must answer on its port and render the home page,
# and the offline default dataset must load. (`make test` on a clean checkout is CI's own run.)
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
port=${PORT:-8765}
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill -- "-$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true  # serve ends what it started, in the work folder, before it goes
    fi
    rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet "$repo" "$work/lab"
cd "$work/lab"
export GALAXY_LAB_CACHE_DIR="$work/cache" GALAXY_LAB_RUNS_DIR="$work/runs" GALAXY_LAB_SETTINGS="$work/lab/galaxy-lab.toml"
echo "fresh clone in $work/lab: make run (installs into a new .venv, then serves on port $port)"
setsid make run PORT="$port" > "$work/make-run.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    if curl -fs "http://127.0.0.1:$port/_stcore/health" > /dev/null 2>&1; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "make run stopped early:"; tail -40 "$work/make-run.log"; exit 1
    fi
    sleep 1
done
curl -fs "http://127.0.0.1:$port/_stcore/health" > /dev/null || { echo "no answer on port $port"; tail -40 "$work/make-run.log"; exit 1; }
# The page itself may take a moment longer than the health check on a busy machine. (Saved to a file first: with
# pipefail, `curl | grep -q` fails when grep stops reading before curl has written everything.)
home_page() { curl -fs "http://127.0.0.1:$port/" -o "$work/home.html" && grep -q "<title>" "$work/home.html"; }
for _ in $(seq 1 30); do
    if home_page; then break; fi
    sleep 1
done
home_page || { echo "the home page did not load"; tail -40 "$work/make-run.log"; exit 1; }
.venv/bin/galaxy-lab data-info synthetic --num-images 30 --json > "$work/info.json" 2> "$work/info.log"
grep -q '"class_names"' "$work/info.json"
echo "fresh clone: make run serves the app and the offline dataset loads"
