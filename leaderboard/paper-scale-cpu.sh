#!/usr/bin/env bash
# The paper's LeNet-5 row of Table 2 at the paper's own scale, on a CPU: LeNet-5, standard training,
# the `paper` preset unchanged (SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule, batch
# 128, [0, 1] inputs, crop + flip, 200 epochs, all 50,000 training and 10,000 test images), on the
# clean training set and on OPS, 2 seeds each, scored in the sandbox and signed.
#
#   leaderboard/paper-scale-cpu.sh [CIFAR10] [DATA_ROOT] [OUT] [WORK]
#
# Defaults: ../shared/data/cifar-10-full-python.tar.gz, data-full, leaderboard/examples/paper-scale-cpu,
# OUT/.work. A DATA_ROOT and WORK outside the checkout survive a fresh clone: the checkpoints of hours
# of training are in WORK, and resuming needs the very same data folder (its manifest's sha256).
# The command to call is $CIFAR10S (default: cifar10s on PATH). The two training sets are scored side
# by side, one thread each (OMP_NUM_THREADS=1; two threads per process on a 2-core machine shared
# with other work spin against each other). Resumable: a finished result is kept, an interrupted seed
# resumes from its last epoch checkpoint in WORK; run the same command again after a stop.
# Several hours on a 2-core CPU; the wall time of each run is in its result (wall_time_s).
set -euo pipefail

cifar10=${1:-../shared/data/cifar-10-full-python.tar.gz}
root=${2:-data-full}
out=${3:-leaderboard/examples/paper-scale-cpu}
work=${4:-$out/.work}
here=$(cd "$(dirname "$0")" && pwd)
cli=${CIFAR10S:-cifar10s}
variants="clean ops-k1"

if [ ! -e "$cifar10" ]; then
    echo "error: no CIFAR-10 at $cifar10 (pass a cifar-10-python.tar.gz with all 50,000 training images)" >&2
    exit 2
fi
mkdir -p "$out"
start=$(date +%s)
stamp() { echo "[$(date +%H:%M:%S), $(( $(date +%s) - start ))s] $*"; }

for variant in $variants; do
    stamp "build $variant"
    "$cli" build --variant "${variant%-k1}" --root "$root" --cifar10 "$cifar10" --quiet
done

score() {  # one training set, both seeds; a second attempt resumes from the first's checkpoints
    local variant=$1 name="lenet5-standard--$1--paper"
    if [ -f "$out/$name.json" ]; then stamp "have $name"; return 0; fi
    for attempt in 1 2; do
        stamp "score $name (attempt $attempt)"
        if OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$cli" score "$here/submissions/lenet5-standard" --root "$root" \
            --variant "$variant" --preset paper --seeds 0 1 --device cpu --allow-slow --quiet --out "$out" \
            --workdir "$work/lenet5-standard--$variant"; then
            stamp "done $name"
            return 0
        fi
    done
    echo "error: $name not scored; run the same command again to resume" >&2
    return 1
}

mkdir -p "$work"
pids=()
for variant in $variants; do
    score "$variant" > "$work/log-$variant.txt" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
stamp "finished (status $status); logs in $work/log-*.txt"
exit $status
