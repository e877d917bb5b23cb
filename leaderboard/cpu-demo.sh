#!/usr/bin/env bash
# Scaled-down, CPU-only run of the whole harness: build clean / EM / OPS / CIFAR-10-S with the
# CPU demonstration recipe (build/recipe-cpu-demo.json: a width-4 EM generator), train LeNet-5
# with three of the paper's Table 4 methods on each training set, score every run on the clean
# test set and render the leaderboard. The figures in the README's "scaled down" table come from
# this script; they show the direction of the paper's results, not its numbers.
#
#   leaderboard/cpu-demo.sh [CIFAR10_ARCHIVE] [DATA_ROOT] [OUT] [EPOCHS]
#
# Defaults: ../shared/data/cifar-10-mini-python.tar.gz, data-cpu-demo, leaderboard/examples/cpu-demo, 20.
# Re-running skips built stages and finished results; a killed run resumes from its checkpoints.
set -euo pipefail

cifar10=${1:-../shared/data/cifar-10-mini-python.tar.gz}
root=${2:-data-cpu-demo}
out=${3:-leaderboard/examples/cpu-demo}
epochs=${4:-20}
here=$(cd "$(dirname "$0")" && pwd)
cli=${CIFAR10S:-cifar10s}

"$cli" build --variant cifar10s --root "$root" --cifar10 "$cifar10" \
    --recipe "$here/../build/recipe-cpu-demo.json" --device cpu --quiet

for variant in clean em ops-k1 cifar10s; do  # folder names, as in the result file names
    for method in standard randaugment at; do
        result="$out/lenet5-$method--$variant--cpu-smoke.json"
        if [ -f "$result" ]; then
            echo "have $result"
            continue
        fi
        # cpu-smoke, but on every training image, the whole test set and the paper's batch size.
        # lr 0.05, not the paper's 0.1: at 0.1 LeNet-5 stayed at chance on clean data (train loss
        # 2.30 for 6 epochs of 79 steps); every override is recorded in the result's preset_diff.
        "$cli" score "$here/submissions/lenet5-$method" --root "$root" --variant "$variant" \
            --preset cpu-smoke --seeds 0 1 --device cpu --quiet --out "$out" \
            --workdir "$out/.work/lenet5-$method--$variant" \
            --set "epochs=$epochs" --set batch_size=128 --set lr=0.05 \
            --set train_subset=null --set eval_subset=null
    done
done

# the results above are signed by this installation's key: trust it for this board
mkdir -p "$out/trusted-keys"
"$cli" keys > "$out/trusted-keys/cpu-demo.pub"
"$cli" leaderboard --results "$out" --out "$out/site" --trusted-keys "$out/trusted-keys"
