"""Dry runs per second of a 20-step dial plan (issue 4 proof: bench of the interpreter).

Run: ``.venv/bin/python bench/dialplan_run.py [seconds]``. The plan mixes what real plans do
most (Set, GotoIf with expressions, Gosub/Return, functions, NoOp, Dial).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from pypbx.config.conf import parse_text
from pypbx.dialplan.dryrun import dry_run_async
from pypbx.dialplan.interpreter import GlobalVars
from pypbx.dialplan.parser import parse_dialplan

PLAN = """
[globals]
TRUNK=flowroute

[sub-clean]
exten => s,1,Set(NUM=${FILTER(0-9,${ARG1})})
same => n,Set(LEN=${LEN(${NUM})})
same => n,Return(${NUM})

[outgoing]
exten => _1NXXNXXXXXX,1,NoOp(Outbound call from ${CALLERID(num)} to ${EXTEN})
same => n,Set(COUNT=0)
same => n,Gosub(sub-clean,s,1(${EXTEN}))
same => n,Set(CLEAN=${GOSUB_RETVAL})
same => n,GotoIf($[${LEN(${CLEAN})} = 11]?ok:bad)
same => n(bad),Hangup(28)
same => n(ok),Set(AREA=${CLEAN:1:3})
same => n,Set(COUNT=$[${COUNT} + 1])
same => n,ExecIf($["${AREA}" = "900"]?Hangup(21))
same => n,Set(CDR(userfield)=${AREA})
same => n,Set(__TRUNK_USED=${GLOBAL(TRUNK)})
same => n,Set(CALLERID(name)=${TOUPPER(pypbx)})
same => n,NoOp(${CUT(CLEAN,,1)} ${MATH(${COUNT}*2,i)})
same => n,GotoIf($[${COUNT} < 2]?again)
same => n(again),Set(X=${IF($[${COUNT} > 0]?yes:no)})
same => n,Set(DIALTIMEOUT=30)
same => n,Verbose(2,Dialling ${CLEAN} via ${TRUNK_USED})
same => n,Dial(SIP/${CLEAN}@${GLOBAL(TRUNK)},${DIALTIMEOUT})
"""


async def main(seconds: float) -> None:
    dp = parse_dialplan(parse_text(PLAN, "bench.conf"))
    store = GlobalVars()
    store.load(dp)
    rng = random.Random(0)
    first = await dry_run_async(
        dp, "outgoing", "18002223333", callerid="1000", globals_=store, rng=rng
    )
    steps = len(first.steps)
    assert steps == 20, steps
    assert first.steps[-1].args == "SIP/18002223333@flowroute,30", first.steps[-1]
    runs = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        await dry_run_async(dp, "outgoing", "18002223333", callerid="1000", globals_=store, rng=rng)
        runs += 1
    elapsed = time.perf_counter() - start
    print(f"dial plan dry run: {steps} steps per run")
    print(f"  {runs / elapsed:,.0f} runs/s, {runs * steps / elapsed:,.0f} steps/s")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0))
