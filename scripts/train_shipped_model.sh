#!/usr/bin/env bash
# Trains v1, the depth model shipped in pybokeh/models/ before issue 12, and its L1-only ablation
# with the same budget (steps, crop size, batch, seed), both on the train split of ../shared/data/rgbd.
# The model shipped now (v2) is `scripts/train_ablations.sh synth_ssi_8k` (MODEL.md, "Training").
# Usage: scripts/train_shipped_model.sh [gan|l1] [extra args, e.g. --resume]
# Each run writes runs/<name>/{config.json,log.jsonl,generator.safetensors} and runs/<name>.out;
# wall times are appended to runs/<name>.time.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:?gan or l1}"; shift
COMMON=(--data ../shared/data/rgbd --steps 8000 --size 128 --ngf 16 --ndf 32 --batch-size 8 --seed 0
        --threads 1 --val-every 1000 --ckpt-every 500 --no-progress)
case "$which" in
  gan) name=gan128_8k; extra=() ;;
  l1)  name=l1_128_8k; extra=(--l1-only) ;;
  *) echo "first argument must be gan or l1" >&2; exit 2 ;;
esac
mkdir -p runs
start=$(date +%s)
echo "start $(date -Is) pybokeh train --out runs/$name ${COMMON[*]} ${extra[*]} $*" >> "runs/$name.time"
nice -n 10 pybokeh train --out "runs/$name" "${COMMON[@]}" "${extra[@]}" "$@" >> "runs/$name.out" 2>&1
end=$(date +%s)
echo "end $(date -Is) wall_s $((end - start))" >> "runs/$name.time"
