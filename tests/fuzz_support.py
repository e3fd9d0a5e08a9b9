"""Fuzzing decoders of untrusted bytes in a subprocess, so a crash fails a test.

A decoder is described by a :class:`FuzzTarget` at module level of a test
module: the function under test, a hypothesis strategy of structured inputs
(valid encodings, hostile shapes such as deeply nested extensions) and the
typed errors it may raise on bad input. :func:`assert_fuzz_clean` runs it in
a child Python: hypothesis draws a structured input and a mutation seed, the
child decodes the input and ``MUTANTS`` mutations of it (flipped bits,
boundary integers, huge length prefixes, truncations, spliced spans), and
before each call writes the case to a file. When the child dies of a signal
(a segfault in C code), hangs, or the decoder raises anything but its typed
errors, the test fails naming the input, saved under
``$ACADEMY_ML_FUZZ_CRASH_DIR`` for a regression test.

Counts: ``$ACADEMY_ML_FUZZ_CASES`` (default 10,000) per decoder in ``make
test``; ``$ACADEMY_ML_FUZZ_SOAK_CASES`` (default 1,000,000) under the
``slow`` marker (``make soak``). ``$ACADEMY_ML_FUZZ_SEED`` replays a run; under
``CI`` the seed is fixed (a gate must not fail on a draw nobody can replay),
elsewhere each run draws a new one and prints it on failure.

Plugging in a decoder::

    TARGET = FuzzTarget(decode=my_decoder, inputs=my_strategy, expected=(WireError,))

    def test_my_decoder_survives_fuzzing() -> None:
        assert_fuzz_clean(__file__, "TARGET", cases=fuzz_cases())
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

__all__ = [
    "MSGPACK_TOKENS",
    "MUTANTS",
    "FuzzReport",
    "FuzzTarget",
    "assert_fuzz_clean",
    "assert_input_clean",
    "fuzz_cases",
    "mutate",
]

#: Mutated variants decoded per structured input (besides the input itself).
MUTANTS = 15
#: The seed of every campaign when ``$CI`` is set.
CI_SEED = 20261203
#: Hypothesis examples per child run (hypothesis' memory grows with one long run).
_CHUNK = 2_000
#: Length prefixes that claim far more than any input holds, and other msgpack edge bytes.
MSGPACK_TOKENS: tuple[bytes, ...] = (
    b"\xc6\xff\xff\xff\xff",  # bin 32
    b"\xdb\xff\xff\xff\xff",  # str 32
    b"\xdd\xff\xff\xff\xff",  # array 32
    b"\xdf\xff\xff\xff\xff",  # map 32
    b"\xc9\xff\xff\xff\xff\x01",  # ext 32, type 1
    b"\xc7\xff\x01",  # ext 8, type 1
    b"\xdc\xff\xff",  # array 16
    b"\xde\xff\xff",  # map 16
    b"\xc1",  # never used
    b"\xd6\xff\x00\x00\x00\x00",  # timestamp 32
    b"\x91" * 64,  # 64 nested one-element arrays
)
_BOUNDARY_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1)
_BOUNDARY_WIDE = (2**63 - 1, 2**63, 2**64 - 1)
_BOUNDARY_WIDTHS = ((1, _BOUNDARY_INTS), (4, _BOUNDARY_INTS), (8, _BOUNDARY_INTS + _BOUNDARY_WIDE))


@dataclass(frozen=True)
class FuzzTarget:
    """A decoder of untrusted bytes and how to feed it.

    Attributes:
        decode: The function under test; its return value is ignored.
        inputs: Structured inputs (valid encodings, hostile shapes).
        expected: Typed errors that mean "bad input, refused cleanly".
        tokens: Byte strings worth splicing into inputs (format edge cases).
    """

    decode: Callable[[bytes], object]
    inputs: st.SearchStrategy[bytes]
    expected: tuple[type[BaseException], ...]
    tokens: tuple[bytes, ...] = MSGPACK_TOKENS


@dataclass
class FuzzReport:
    """What a clean fuzz run did."""

    cases: int
    seconds: float
    seed: int
    outcomes: dict[str, int] = field(default_factory=dict)


def fuzz_cases(*, soak: bool = False) -> int:
    """Cases per decoder: 10,000 by default, 1,000,000 for a soak (both from the environment)."""
    if soak:
        return int(os.environ.get("ACADEMY_ML_FUZZ_SOAK_CASES", "1000000"))
    return int(os.environ.get("ACADEMY_ML_FUZZ_CASES", "10000"))


#: How long a soak campaign (1,000,000 cases) may run.
SOAK_TIMEOUT = 6 * 3600.0


def run_campaign(
    module_file: str, attr: str, *, soak: bool = False, seen: Sequence[str] = ("accepted",)
) -> FuzzReport:
    """A campaign of :func:`fuzz_cases` cases that must have ended in each outcome of ``seen``.

    ``seen`` names outcomes ("accepted", or a typed error's class name) the
    inputs must reach at least once, so a campaign whose generator stopped
    reaching the decoder's refusals (or its happy path) fails.
    """
    cases = fuzz_cases(soak=soak)
    timeout = SOAK_TIMEOUT if soak else 3600.0
    report = assert_fuzz_clean(module_file, attr, cases=cases, timeout=timeout)
    assert report.cases >= cases
    for outcome in seen:
        assert report.outcomes[outcome] > 0, f"{attr}: no input ended {outcome}: {report.outcomes}"
    return report


def mutate(data: bytes, rng: random.Random, tokens: Sequence[bytes]) -> bytes:
    """One to four random edits of ``data``: the mutation half of the campaign."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # flip a bit
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # a random byte
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 2:  # a boundary integer where a length or offset may be
            width, values = rng.choice(
                ((1, _BOUNDARY_INTS), (4, _BOUNDARY_INTS), (8, _BOUNDARY_WIDE))
            )
            value = rng.choice(values) % (1 << (8 * width))
            order = rng.choice(("little", "big"))
            out[pos : pos + width] = value.to_bytes(width, order)  # type: ignore[arg-type]
        elif op == 3:  # a format token
            out[pos:pos] = rng.choice(tokens)
        elif op == 4:  # truncate
            del out[pos:]
        elif op == 5:  # delete a span
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 6:  # duplicate a span
            span = out[pos : pos + rng.randint(1, 64)]
            out[pos:pos] = span
        else:  # random bytes
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
    return bytes(out)


def assert_fuzz_clean(
    module_file: str, attr: str, *, cases: int, timeout: float = 3600.0
) -> FuzzReport:
    """Fuzz the target ``attr`` of ``module_file`` with ``cases`` inputs in a child process.

    Raises:
        AssertionError: The child crashed, hung or saw an unexpected exception
            (the message holds the input and where it was saved).
    """
    default = CI_SEED if os.environ.get("CI") else random.randrange(2**32)
    seed = int(os.environ.get("ACADEMY_ML_FUZZ_SEED", default))
    return _run_child(module_file, attr, cases, seed, None, timeout)


def assert_input_clean(module_file: str, attr: str, data: bytes, *, timeout: float = 600.0) -> str:
    """Decode one input with the target in a child process: the outcome's name.

    ``"accepted"`` or the name of the typed error; a regression test for an
    input that once crashed the process (or a saved fuzz finding) uses this.

    Raises:
        AssertionError: The child crashed, hung or saw an unexpected exception.
    """
    report = _run_child(module_file, attr, 1, 0, data, timeout)
    (outcome,) = report.outcomes
    return outcome


def _run_child(
    module_file: str, attr: str, cases: int, seed: int, replay: bytes | None, timeout: float
) -> FuzzReport:
    with tempfile.TemporaryDirectory(prefix="academy-ml-fuzz-") as scratch:
        case_file = Path(scratch) / "case.bin"
        if replay is not None:
            case_file.write_bytes(replay)
            cases = -1  # the child decodes the case file once
        command = [
            sys.executable,
            "-c",
            "import sys, fuzz_support; sys.exit(fuzz_support.child_main(sys.argv[1:]))",
            module_file,
            attr,
            str(cases),
            str(seed),
            str(case_file),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).parent), *filter(None, [env.get("PYTHONPATH")])]
        )
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            _fail(f"hung (no result in {timeout:.0f} s)", attr, seed, case_file, "")
        if done.returncode != 0:
            how = (
                f"died of signal {-done.returncode}"
                if done.returncode < 0
                else f"failed (exit {done.returncode})"
            )
            _fail(how, attr, seed, case_file, done.stdout + done.stderr)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    return FuzzReport(
        cases=result["cases"], seconds=result["seconds"], seed=seed, outcomes=result["outcomes"]
    )


def _fail(how: str, attr: str, seed: int, case_file: Path, output: str) -> None:
    data = case_file.read_bytes() if case_file.exists() else b""
    crash_dir = Path(
        os.environ.get(
            "ACADEMY_ML_FUZZ_CRASH_DIR", Path(tempfile.gettempdir()) / "academy-ml-fuzz-crashes"
        )
    )
    crash_dir.mkdir(parents=True, exist_ok=True)
    saved = crash_dir / f"{attr}-{hashlib.sha256(data).hexdigest()[:16]}.bin"
    saved.write_bytes(data)
    shown = data[:2048].hex() + ("..." if len(data) > 2048 else "")
    raise AssertionError(
        f"fuzzing {attr} {how} on an input of {len(data)} bytes (seed {seed}), saved to "
        f"{saved}:\n{shown}\n--- child output ---\n{_excerpt(output)}"
    )


def _excerpt(output: str, limit: int = 3000) -> str:
    lines = [line for line in output.splitlines() if "while generating" not in line]
    text = "\n".join(lines)
    return text if len(text) <= 2 * limit else f"{text[:limit]}\n...\n{text[-limit:]}"


def child_main(argv: list[str]) -> int:
    """Run in the child: fuzz, then print one JSON line of counts (exit 3 on a finding)."""
    module_file, attr, cases_text, seed_text, case_path = argv
    spec = importlib.util.spec_from_file_location(f"_fuzz_{Path(module_file).stem}", module_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target: FuzzTarget = getattr(module, attr)
    runner = _Runner(target, os.open(case_path, os.O_RDWR | os.O_CREAT, 0o600))
    cases, seed = int(cases_text), int(seed_text)
    if cases < 0:
        cases = 0
        runner.check(Path(case_path).read_bytes())
    examples = math.ceil(cases / (MUTANTS + 1))
    started = time.perf_counter()
    try:
        for chunk, first in enumerate(range(0, examples, _CHUNK)):
            runner.run(min(_CHUNK, examples - first), seed + chunk)
    except Exception:
        # Hypothesis has shrunk the failure and replayed it last: save that input.
        runner.record(runner.failing or b"")
        traceback.print_exc()
        return 3
    print(
        json.dumps(
            {
                "cases": sum(runner.outcomes.values()),
                "seconds": round(time.perf_counter() - started, 2),
                "outcomes": dict(runner.outcomes),
            }
        )
    )
    return 0


class _Runner:
    def __init__(self, target: FuzzTarget, fd: int) -> None:
        self.target = target
        self.fd = fd
        self.outcomes: Counter[str] = Counter()
        self.failing: bytes | None = None

    def record(self, data: bytes) -> None:
        # On disk before the call: a segfault leaves the input behind.
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def run(self, examples: int, seed: int) -> None:
        @hypothesis_seed(seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(self.target.inputs, st.integers(0, 2**64 - 1))
        def fuzz(base: bytes, mutation_seed: int) -> None:
            rng = random.Random(mutation_seed)
            self.check(base)
            for _ in range(MUTANTS):
                self.check(mutate(base, rng, self.target.tokens))

        fuzz()

    def check(self, data: bytes) -> None:
        self.record(data)
        try:
            self.target.decode(data)
        except self.target.expected as exc:
            self.outcomes[type(exc).__name__] += 1
            return
        except BaseException:
            self.failing = data
            raise
        self.outcomes["accepted"] += 1
