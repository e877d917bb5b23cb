#!/bin/bash
# The whole campaign in one command on a GPU machine with no network, each phase under its own
# time limit inside one deadline, everything written under $OUT (default benchmarks/results/DATE-gpu).
#
# Bring along, in git-ignored folders of the checkout:
#   gpu-data/cifar-10-mini-python.tar.gz   the CIFAR-10 archive the phases use (or DATA=...)
#   .whl/       wheels the machine lacks (cryptography, cffi, pycparser for Python 3.12 there)
#   .gpu-tools/bwrap                        a bubblewrap binary (the sandboxed score needs it)
#
#   DEADLINE=540 bash benchmarks/gpu_campaign_call.sh          # the next campaign's phases, in order of value
#   DEADLINE=540 PHASES="smoke em effect speed grid" bash ...   # the first campaign's
#
# Caps (seconds) per phase, each holding ~10 s of Python start-up and a 15 s margin:
#   CAP_emspeed=100 CAP_emeffect=150 CAP_trainspeed=90 CAP_headline=100 CAP_defenses=50 CAP_sandbox=60
#   CAP_compile=120 (with DEADLINE=550, compile runs on what the others leave); first campaign: CAP_smoke=120 CAP_em=280
#   CAP_effect=150 CAP_speed=120 CAP_grid=200.
# A phase gets min(cap, time left); one cut off writes no JSON (the EM phase's round log is then copied
# to $OUT/em_log_partial.jsonl). PYTHON (default python3) runs it; CAMPAIGN_ARGS="--dry-run" runs every
# phase tiny on the CPU (the tests do). EM_EFFECT_IMAGES=10000 forces emeffect's image count,
# HEADLINE_EPOCHS=60 the headline's epochs.
set -u
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DATA=${DATA:-gpu-data/cifar-10-mini-python.tar.gz}
OUT=${OUT:-benchmarks/results/$(date +%F)-gpu}
mkdir -p "$OUT"
T0=$(date +%s); END=$((T0 + ${DEADLINE:-540}))
left() { echo $(( END - $(date +%s) )); }
cap() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }
LOG=$OUT/log.txt
{
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl
  fi
  if ! command -v bwrap >/dev/null && [ -x .gpu-tools/bwrap ]; then install -m 0755 .gpu-tools/bwrap /usr/local/bin/bwrap; fi
  # the tests read the subset from ../shared/data beside the checkout, as on the development machine
  # (on the GPU machine only: a dry run never writes outside the checkout)
  if [[ "${CAMPAIGN_ARGS:-}" != *--dry-run* ]] && [ ! -e ../shared/data/cifar-10-mini-python.tar.gz ] && [ -f "$DATA" ]; then
    mkdir -p ../shared/data && ln -s "$(realpath "$DATA")" ../shared/data/cifar-10-mini-python.tar.gz
  fi
  bwrap --version; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, torchvision, numpy, cryptography; print(torch.__version__, torchvision.__version__, numpy.__version__, cryptography.__version__)"
} >"$LOG" 2>&1
export PYTHONPATH=$PWD
root=${CAMPAIGN_ROOT:-/tmp/campaign-root}
run_phase() {  # phase, cap
  local t b; t=$(cap "$2"); b=$(( t - 15 ))
  echo "== $1: ${t}s (budget ${b}s), $(left)s left" >>"$LOG"
  [ "$b" -gt 20 ] || { echo "   skipped: no time left" >>"$LOG"; return; }
  timeout "$t" "$PY" benchmarks/gpu_campaign.py --data "$DATA" --out "$OUT/campaign" \
      --root "$root" --phases "$1" --budget "$b" ${CAMPAIGN_ARGS:-} 2>&1 | tr '\r' '\n' | grep -v '%|' >>"$LOG"
  echo "   rc ${PIPESTATUS[0]}" >>"$LOG"
}
for phase in ${PHASES:-emspeed emeffect trainspeed headline defenses sandbox compile}; do
  var=CAP_$phase
  case $phase in
    smoke) d=120;; em) d=280;; effect) d=150;; speed) d=120;; grid) d=200;;
    emspeed) d=100;; emeffect) d=150;; trainspeed) d=90;; headline) d=100;; defenses) d=50;; sandbox) d=60;;
    *) d=120;;
  esac
  run_phase "$phase" "${!var:-$d}"
  if [ "$phase" = em ] && [ ! -f "$OUT/campaign/em.json" ]; then
    cp "$root"/cifar10s-v1/.work/em-*/em_log.jsonl "$OUT/em_log_partial.jsonl" 2>>"$LOG"
  fi
done
echo "== done, $(left)s left" >>"$LOG"
cat "$OUT/campaign/summary.md" 2>/dev/null || echo "no phase finished: see $LOG"
