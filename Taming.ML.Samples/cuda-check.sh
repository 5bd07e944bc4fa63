#!/usr/bin/env bash
# End-to-end check of the CUDA path in a few minutes: the tokenizer's and the prior's training steps as CUDA graphs
# against the same training run eagerly (the same losses, and the speed of both), the tokenizer trained, evaluated and reloaded
# (float32 and bf16, same steps), a tokenizer streamed through a shuffle pool (validated between its CUDA-graph steps), a class-conditional prior, sampling (plain and windowed), decoding, a prior fitted on windows of
# whole-image token grids and its whole canvases, ML.NET vs. raw TorchSharp,
# windowed modes vs. the reference loop, then the benchmark of the reference's workloads in every precision and
# cached sampling without CUDA graphs (the eager loop).
# Usage: cuda-check.sh <output dir> [command that runs the sample app]
#   default app command: dotnet run --project Taming.ML.Samples -c Release --
# Each step prints its outcome; a failing step is reported and the others still run.
# DEVICE (default cuda), PARTS (which parts and in what order, default "graphs bench e2e modes"), PRECISIONS (bench's, one
# process each, default "float32 tf32 bf16"), STEPS (training steps, default 1500), WINDOWED (the untrained prior of
# the windowed modes, default --window 16 --layers 24 --width 1024), BENCH (extra bench options, e.g. --only train) and
# STEP_TIMEOUT (seconds one step may run, default 600) and PERCEPTUAL (the tokenizers' perceptual weight, default 0: a device
# copy may leave the ResNet18 model out, and the figures stay comparable with earlier runs) adjust it.
set -uo pipefail
out=${1:?usage: cuda-check.sh <output dir> [app command]}
app=${2:-dotnet run --project Taming.ML.Samples -c Release --}
here=$(cd "$(dirname "$0")" && pwd)
mnist="$here/data/mnist/mnist10k-images-idx3-ubyte.gz"
labels="$here/data/mnist/mnist10k-labels-idx1-ubyte.gz"
device=${DEVICE:-cuda}
steps=${STEPS:-1500}
mkdir -p "$out"
failed=0
step() {
  local name=$1; shift
  echo "== $name"
  local start=$SECONDS
  if timeout ${STEP_TIMEOUT:-600} "$@"; then echo "== $name: ok ($((SECONDS - start)) s)"; else echo "== $name: FAILED ($((SECONDS - start)) s)"; failed=$((failed + 1)); fi
}

check() { # a verdict without a timeout: the name, then a command whose status it is
  local name=$1; shift
  if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED"; failed=$((failed + 1)); fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
bench() {
  for p in ${PRECISIONS:-float32 tf32 bf16}; do step "bench $p" $app bench --device $device --precision $p ${BENCH:-}; done
  step "bench sampling without CUDA graphs" $app bench --device $device --precision float32,bf16 ${BENCH:-} --only sample --eager-sampling
}
# The figure after a name (L1, train) on a step's progress line of a log.
at_step() { awk -v s="$2" -v k="$3" '$1 == "step" && $2 ~ "^" s "/" { for (i = 3; i < NF; i++) if ($i == k) print $(i + 1) }' "$1"; }
# Whether the graph run's figure at the last step is within 10 % of the eager run's, and below its own at an early step.
same_loss() { # trainer, key, early step, last step
  local g=$(at_step "$out/$1-graph.txt" $4 $2) e=$(at_step "$out/$1-eager.txt" $4 $2) early=$(at_step "$out/$1-graph.txt" $3 $2)
  echo "   $1 $2 at step $4: graph ${g:-?}, eager ${e:-?} (graph at step $3: ${early:-?})"
  awk -v g="$g" -v e="$e" -v early="$early" 'BEGIN { d = g - e; if (d < 0) d = -d; exit !(g != "" && e != "" && d <= 0.1 * e && g < early) }'
}
graphs() {
  # The same bf16 training replayed as CUDA graphs and run eagerly: the tokenizer for 200 steps (the GAN from step 120,
  # so both of its iteration's graphs), then a prior on its tokens for 300. On a GPU the graph runs must say they were
  # captured, and both runs must reach the same loss (up to cuDNN's and atomic adds' nondeterminism).
  # The graph runs also write checkpoints every 3 s: copies made and saved between replays, which must change nothing.
  local mode flag
  for mode in graph eager; do
    flag="--checkpoint-minutes 0.05"; [ $mode = eager ] && flag=--eager-training
    step "tokenizer bf16, $mode" sh -c "$app train-tokenizer --images '$mnist' --take 2000 --output '$out/tokenizer-$mode.zip' \
      --steps 200 --disc-start 120 --seed 1 --precision bf16 --perceptual-weight 0 --device $device $flag > '$out/tokenizer-$mode.txt' 2>&1"
    grep -E "CUDA graph|rror" "$out/tokenizer-$mode.txt"
  done
  for mode in graph eager; do # both on the eager run's tokens
    flag="--checkpoint-minutes 0.05"; [ $mode = eager ] && flag=--eager-training
    step "prior bf16, $mode" sh -c "$app train-prior --tokenizer '$out/tokenizer-eager.zip' --images '$mnist' --labels '$labels' \
      --take 2000 --output '$out/prior-$mode.zip' --steps 300 --seed 1 --precision bf16 --device $device $flag > '$out/prior-$mode.txt' 2>&1"
    grep -E "CUDA graph|rror" "$out/prior-$mode.txt"
  done
  if [ $device != cpu ]; then
    check "the tokenizer's iteration was captured (twice)" test "$(grep -c 'is captured as a CUDA graph' "$out/tokenizer-graph.txt")" = 2
    check "the prior's step was captured" test "$(grep -c 'is captured as a CUDA graph' "$out/prior-graph.txt")" = 1
  fi
  check "checkpoints were written between the graph runs' steps" sh -c "grep -q 'Checkpoint at step' '$out/tokenizer-graph.txt' && grep -q 'Checkpoint at step' '$out/prior-graph.txt'"
  check "tokenizer: graph and eager reach the same loss" same_loss tokenizer L1 50 200
  check "prior: graph and eager reach the same loss" same_loss prior train 100 300
  for flag in "" --eager-training; do
    step "bench training bf16 ${flag:-(CUDA graphs)}" $app bench --device $device --precision bf16 --only train,prior --steps 20 ${BENCH:-} $flag
  done
}
e2e() {
  for p in float32 bf16; do
    step "tokenizer $p" $app train-tokenizer --images "$mnist" --labels "$labels" --take 9000 --output "$out/tokenizer-$p.zip" \
      --steps $steps --disc-weight 0.1 --perceptual-weight ${PERCEPTUAL:-0} --seed 1 --device $device --precision $p
    step "evaluate tokenizer $p" $app evaluate-tokenizer --model "$out/tokenizer-$p.zip" --images "$mnist" --skip 9000 --grid "$out/reconstructions-$p.png"
  done
  step "tokenizer streamed through a shuffle pool, validated on held-out digits" $app train-tokenizer --images "$mnist" --take 2000 --shuffle-pool 256 --holdout 0.1 \
    --output "$out/tokenizer-streamed.zip" --steps 100 --perceptual-weight ${PERCEPTUAL:-0} --seed 1 --device $device
  step "prior" $app train-prior --tokenizer "$out/tokenizer-float32.zip" --images "$mnist" --labels "$labels" --output "$out/prior.zip" \
    --steps $steps --seed 1 --device $device
  step "generate" $app generate --tokenizer "$out/tokenizer-float32.zip" --prior "$out/prior.zip" --all-labels --count 8 --top-k 20 --output "$out/samples.png"
  step "generate windowed 16x16" $app generate --tokenizer "$out/tokenizer-float32.zip" --prior "$out/prior.zip" --label 3 --count 4 \
    --height-tokens 16 --width-tokens 16 --output "$out/windowed.png"
  step "windowed prior on whole 64x64 digits" $app train-prior --tokenizer "$out/tokenizer-float32.zip" --images "$mnist" --take 2000 \
    --image-size 64x64 --window 8 --output "$out/prior-windows.zip" --steps $((steps / 5)) --seed 1 --device $device
  step "generate whole 64x64 digits" $app generate --tokenizer "$out/tokenizer-float32.zip" --prior "$out/prior-windows.zip" --count 4 \
    --output "$out/whole.png"
  step "ML.NET vs raw TorchSharp" $app benchmark-tokenizer --model "$out/tokenizer-float32.zip" --images "$mnist"
  step "cached vs uncached sampling" $app benchmark-sampling --prior "$out/prior.zip"
}
modes() {
  step "windowed modes" $app benchmark-windowed ${WINDOWED:---window 16 --layers 24 --width 1024} --height-tokens 32 --width-tokens 32 --count 4 --repeats 1 --device $device
}
for part in ${PARTS:-graphs bench e2e modes}; do $part; done
echo "cuda-check: $failed step(s) failed"
exit $((failed > 0))
