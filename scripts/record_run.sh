#!/usr/bin/env bash
# Copies a finished run's record into docs/model_runs/ (the files this repository keeps per run):
#   NAME.config.json        the run's TrainConfig
#   NAME.log_summary.jsonl  losses every 500 steps and every validation, rounded
#   NAME.time               start / end lines written by scripts/train_ablations.sh
#   NAME.eval.txt           pybokeh eval-depth (network alone): per source, then grouped beside the baselines
#   NAME.grouped.json       the same as JSON, without per-image rows
# Usage: scripts/record_run.sh NAME [extra eval-depth args]
set -euo pipefail
cd "$(dirname "$0")/.."
name="$1"; shift
PY="${PYTHON:-.venv/bin/python}"
PYBOKEH="${PYBOKEH:-.venv/bin/pybokeh}"
out=docs/model_runs
cp "runs/$name/config.json" "$out/$name.config.json"
[ -f "runs/$name.time" ] && cp "runs/$name.time" "$out/$name.time"
"$PY" - "$name" <<'PYEOF'
import json, sys
name = sys.argv[1]
keep = []
for line in open(f"runs/{name}/log.jsonl"):
    r = json.loads(line)
    if r.get("event") == "val" or r.get("step", 0) % 500 == 0:
        keep.append({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})
with open(f"docs/model_runs/{name}.log_summary.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in keep)
PYEOF
nice -n 10 "$PYBOKEH" eval-depth --weights "runs/$name" --data ../shared/data/rgbd --threads 1 "$@" > "$out/$name.eval.txt"
nice -n 10 "$PYBOKEH" eval-depth --weights "runs/$name" --data ../shared/data/rgbd --threads 1 --json --per-image "$@" \
    > "runs/$name.grouped.json"
"$PY" -c "
import json
d = json.load(open('runs/$name.grouped.json')); d.pop('per_image', None); d.pop('per_image_grouped', None)
json.dump(d, open('$out/$name.grouped.json', 'w'), indent=1)"
echo "recorded $name"
