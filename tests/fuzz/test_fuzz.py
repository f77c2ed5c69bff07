"""CI side of the fuzzers: every target under hypothesis (``@given(st.binary())``, bounded)
and every file of the regression corpus (tests/fuzz/corpus/<target>/) replayed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
CASES = sorted((t, p) for t in targets.TARGETS for p in (CORPUS / t).glob("*") if p.is_file())


@pytest.mark.parametrize("target, path", CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_regression_corpus(target, path):
    targets.TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_fuzz_target_with_hypothesis(target):
    fn = targets.TARGETS[target]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=512))
    def run(data):
        fn(data)

    run()


def test_every_target_has_a_corpus_directory():
    for t in targets.TARGETS:
        assert (CORPUS / t).is_dir(), t
