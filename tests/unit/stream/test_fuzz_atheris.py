"""A bounded coverage-guided fuzzing run of the decoder (``tests/fuzz/fuzz_decoder.py``).

atheris runs the harness in a child process: a decoder exception or a broken
invariant (a message neither a row nor a rejection, a non-finite row) makes
libFuzzer stop with a crash report and a non-zero exit, which fails this test
with the reproducing input's path.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

if platform.system() != "Linux" or platform.machine() != "x86_64":
    pytest.skip("atheris ships wheels for Linux x86_64 only", allow_module_level=True)

HARNESS = Path(__file__).parents[2] / "fuzz" / "fuzz_decoder.py"
RUNS = 100_000


def test_the_decoder_survives_a_coverage_guided_fuzzing_run(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    done = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", "-seed=7", "-max_len=4096",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert f"Done {RUNS} runs" in output, output[-2000:]
    coverage = re.findall(r"DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)", output)
    assert coverage, output[-2000:]
    edges, features, kept = map(int, coverage[-1])
    print(f"\natheris: {RUNS} inputs, {edges} edges, {features} features, {kept} in the corpus")
    assert kept > 10  # coverage guidance worked: inputs reaching new code were kept
