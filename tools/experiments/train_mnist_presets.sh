#!/usr/bin/env bash
# Train, evaluate and export the MNIST presets of issue 11 (configs/<preset>.py), resumably.
#
#   nohup tools/experiments/train_mnist_presets.sh > /work/runs_mnist.out 2>&1 &
#   nohup tools/experiments/train_mnist_presets.sh --parallel=2 ggcn_mnist vapo_mnist > run.out 2>&1 &
#
# For each preset, in order (one lane, or two lanes taking every other preset with --parallel=2):
#   1. python tools/train.py --model=<preset> --workdir=<runs>/<preset>   (logs/<preset>.train.log)
#      A killed run is resumed by running this script again: tools/train.py continues from the
#      workdir's last checkpoint; stages already finished are skipped (marker files <stage>.done).
#   2. python tools/eval.py --workdir=<runs>/<preset> --protocol=mnist      -> reports/<preset>/report.json
#      python tools/eval.py --workdir=<runs>/<preset> --protocol=mnist_ood  -> reports/<preset>/ood.json
#   3. python tools/export.py --workdir=<runs>/<preset> --preset=<preset> --shipped --reports=<runs>/reports/<preset>
#      (into this checkout's ebm_zoo/presets/weights/<preset>/; the command prints the sha256 to pin;
#      metadata.json gets the protocol figures, OOD AUROCs and the run's training wall-clock / CPU-s)
#   Then: python tools/experiments/mnist_table.py rebuilds the benchmark table and gallery.
#
# Options (or environment variables):
#   --runs=DIR      (MNIST_RUNS, default /work/runs_mnist) run directories, logs and reports; keep it
#                   outside the repository.
#   --python=PATH   (PYTHON, default: python3 on PATH) the interpreter with ebm_zoo installed.
#   --parallel=1|2  presets trained at a time (default 1; 2 halves the wall-clock on an idle
#                   4-core machine, not on 2 cores).
#   --no-export     stop after the evaluation.
#   --overwrite     pass --overwrite to tools/export.py (replace an existing preset).
#   --train_args="..." / --eval_args="..."  extra flags for tools/train.py / both tools/eval.py
#                   calls, e.g. a smoke test: --train_args=--train_steps=20 --eval_args=--num_samples=200
#   presets...      default: all nine MNIST presets (the eight of issue 11 and energy_matching_mnist).
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${MNIST_RUNS:-/work/runs_mnist}"
PY="${PYTHON:-python3}"
PARALLEL=1
EXPORT=1
OVERWRITE=()
TRAIN_ARGS=()
EVAL_ARGS=()
PRESETS=()
ALL=(descriptor_mnist multigrid_mnist wgcn_mnist ggcn_mnist vapo_mnist short_run_mnist energy_matching_mnist
     multigrid_cd_mnist multigrid_pcd_mnist)

for arg in "$@"; do
  case "$arg" in
    --runs=*) RUNS="${arg#*=}" ;;
    --python=*) PY="${arg#*=}" ;;
    --parallel=*) PARALLEL="${arg#*=}" ;;
    --no-export) EXPORT=0 ;;
    --overwrite) OVERWRITE=(--overwrite) ;;
    --train_args=*) read -r -a TRAIN_ARGS <<< "${arg#*=}" ;;
    --eval_args=*) read -r -a EVAL_ARGS <<< "${arg#*=}" ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --*) echo "Unknown option $arg; see --help." >&2; exit 2 ;;
    *) PRESETS+=("$arg") ;;
  esac
done
[ ${#PRESETS[@]} -eq 0 ] && PRESETS=("${ALL[@]}")
if [ "$PARALLEL" != 1 ] && [ "$PARALLEL" != 2 ]; then
  echo "--parallel must be 1 or 2, got $PARALLEL." >&2; exit 2
fi
for p in "${PRESETS[@]}"; do
  if [ ! -f "$REPO/configs/$p.py" ]; then
    echo "No config configs/$p.py for preset '$p'; choose from: ${ALL[*]}." >&2; exit 2
  fi
done
RUNS="$(realpath -m "$RUNS")"
case "$RUNS/" in
  "$REPO"/*) echo "--runs=$RUNS is inside the repository $REPO; choose a directory outside it." >&2; exit 2 ;;
esac
mkdir -p "$RUNS" || { echo "Cannot create --runs=$RUNS." >&2; exit 2; }
mkdir -p "$RUNS/logs" "$RUNS/reports"

say() { echo "[$(date -u +%FT%TZ)] $* (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$RUNS/logs/launcher.log"; }

# stage NAME PRESET CMD...: runs CMD unless <runs>/<preset>.<NAME>.done exists; logs; marks success.
stage() {
  local name="$1" p="$2"; shift 2
  local mark="$RUNS/logs/$p.$name.done" log="$RUNS/logs/$p.$name.log"
  if [ -f "$mark" ]; then say "$p: $name already done ($mark)"; return 0; fi
  say "$p: $name starts -> $log"
  local t0=$SECONDS
  if (cd "$REPO" && "$@") >> "$log" 2>&1; then
    echo "$((SECONDS - t0)) s" > "$mark"
    say "$p: $name done in $((SECONDS - t0)) s"
  else
    say "$p: $name FAILED (exit $?); see $log. Run the script again to resume."
    return 1
  fi
}

one_preset() {
  local p="$1" w="$RUNS/$1"
  stage train "$p" "$PY" tools/train.py --model="$p" --workdir="$w" "${TRAIN_ARGS[@]}" || return 1
  stage eval "$p" "$PY" tools/eval.py --workdir="$w" --protocol=mnist --out="$RUNS/reports/$p" "${EVAL_ARGS[@]}" || return 1
  stage ood "$p" "$PY" tools/eval.py --workdir="$w" --protocol=mnist_ood --out="$RUNS/reports/$p" "${EVAL_ARGS[@]}" || return 1
  if [ "$EXPORT" = 1 ]; then
    stage export "$p" "$PY" tools/export.py --workdir="$w" --preset="$p" --shipped --reports="$RUNS/reports/$p" "${OVERWRITE[@]}" || return 1
  fi
}

lane() {  # lane K: presets K, K+PARALLEL, ...
  local k="$1" status=0 i
  for ((i = k; i < ${#PRESETS[@]}; i += PARALLEL)); do
    one_preset "${PRESETS[$i]}" || status=1
  done
  return $status
}

say "MNIST presets: ${PRESETS[*]}; runs in $RUNS; $PARALLEL at a time; python $PY"
pids=()
for ((k = 0; k < PARALLEL; k++)); do
  lane "$k" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
say "all lanes finished (status $status); reports in $RUNS/reports"
exit $status
