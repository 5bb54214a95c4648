#!/usr/bin/env bash
# The accelerator check of issue 22, for the first machine with a GPU (about 4 minutes).
# Prints kernel rows/s of the 784-250-10-250-784 model at batch 4096 against the
# GPU's memory-bandwidth bound, and end-to-end events/s at d=16 and d=784 on the
# embedded broker. Needs seismo installed with a CUDA build of torch.
# Usage: deploy/gpu-check.sh [OUT.json]   (default gpu-check.json)
set -euo pipefail
out="${1:-gpu-check.json}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
seismo bench --gpu-check --device cuda --json "$out"
