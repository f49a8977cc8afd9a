"""Dial plan lookup benchmark: lookups per second in a 10,000-extension plan with patterns.

Run: ``.venv/bin/python bench/dialplan.py [--seconds S]``. Prints the median of several runs
for cold lookups (every dialled number new: no result cache helps) and warm ones (a working
set of numbers dialled again and again, as a real PBX sees), against the target of 50,000/s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from pypbx.config.conf import parse_text
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import parse_dialplan

TARGET = 50_000


def build_plan(n_literals: int = 8_000, n_patterns: int = 2_000) -> Dialplan:
    """``from-internal`` includes local extensions, 2,000 prefix patterns and an outbound set."""
    lines = [
        "[from-internal]",
        "include => local-exts",
        "include => prefixes",
        "include => outbound",
        "[local-exts]",
    ]
    for i in range(n_literals):
        ext = 20000 + i
        lines.append(f"exten => {ext},1,Dial(SIP/{ext},20)")
        lines.append(f"exten => {ext},n,VoiceMail({ext}@default)")
    lines.append("[prefixes]")
    for i in range(n_patterns):
        lines.append(f"exten => _{i:04d}XXXX,1,Dial(SIP/${{EXTEN}}@trunk{i % 7})")
    lines += [
        "[outbound]",
        "exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@trunk)",
        "exten => _011.,1,Dial(SIP/${EXTEN}@intl)",
        "exten => _9[2-9]XXXXXX,1,Dial(SIP/${EXTEN:1}@local)",
        "exten => _X.,1,Congestion()",
    ]
    return parse_dialplan(parse_text("\n".join(lines) + "\n", "bench.conf"))


def dialled_numbers(rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            out.append(str(20000 + rng.randrange(8_000)))  # a local extension
        elif kind < 0.7:
            out.append(f"{rng.randrange(2_000):04d}{rng.randrange(10_000):04d}")  # a prefix
        elif kind < 0.9:
            out.append(f"1{rng.randrange(2, 10)}{rng.randrange(10**9):09d}")  # NANP
        else:
            out.append(f"*{rng.randrange(100)}")  # matched by nothing
    return out


def _rate(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    n = run()
    return n / (time.perf_counter() - start)


def bench_lookups(runs: int = 5, per_run: int = 20_000) -> dict[str, float]:
    rng = random.Random(4)
    results: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(runs):
        dp = build_plan()
        dp.find("from-internal", "0", 1)  # build the indexes outside the timing
        numbers = dialled_numbers(rng, per_run)

        def cold(dp: Dialplan = dp, numbers: list[str] = numbers) -> int:
            for num in numbers:
                dp.find("from-internal", num, 1)
            return len(numbers)

        results["cold"].append(_rate(cold))
        working_set = numbers[:500]

        def warm(dp: Dialplan = dp, working_set: list[str] = working_set) -> int:
            for _ in range(40):
                for num in working_set:
                    dp.find("from-internal", num, 1)
            return 40 * len(working_set)

        results["warm"].append(_rate(warm))
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dp = build_plan()
    n_ext = sum(len(c.extensions) for c in dp.contexts.values())
    print(f"plan: {n_ext} extensions in {len(dp.contexts)} contexts")
    rates = bench_lookups(runs=args.runs)
    for kind, rate in rates.items():
        verdict = "ok" if rate >= TARGET else "BELOW TARGET"
        print(f"lookups/s ({kind}): {rate:,.0f}  (target {TARGET:,}: {verdict})")


if __name__ == "__main__":
    main()
