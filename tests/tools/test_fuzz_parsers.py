"""The parsers under fuzzing, on CPython: the targets of tools/fuzz_parsers.py
(frames.Decoder and frames.decode, cbor.loads against cbor2, messages.decode,
cose.decode, token.verify in both suites and past the MAC, revocation and time
updates raw and past the MAC) each raise only their own error class, for any
bytes and for mutations of valid encodings (hypothesis here; `make fuzz` runs
the coverage-guided campaign). Inputs a campaign found are kept in
tests/fuzz_regressions/ (first byte: the target) and replayed here.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import fuzz_parsers as fp
from tools.fuzzframes import Mutator

REGRESSIONS = Path(__file__).resolve().parents[1] / "fuzz_regressions"
SEEDS = fp.seeds()
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_seed_corpus_reaches_every_target() -> None:
    assert {s[0] % fp.TARGETS for s in SEEDS} == set(range(fp.TARGETS))
    for s in SEEDS:
        fp.one_input(s)


@FAST
@given(st.integers(0, fp.TARGETS - 1), st.binary(max_size=1200))
def test_any_bytes_raise_only_the_parsers_error(target: int, data: bytes) -> None:
    fp.one_input(bytes([target]) + data)


@FAST
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1))
def test_mutated_valid_encodings_raise_only_the_parsers_error(seed: bytes, n: int) -> None:
    mut = Mutator(random.Random(n), [s[1:] for s in SEEDS])
    fp.one_input(seed[:1] + mut.mutate_payload(seed[1:]))


def test_regressions_found_by_fuzzing() -> None:
    cases = sorted(REGRESSIONS.glob("*.bin"))
    for path in cases:
        fp.one_input(path.read_bytes())
