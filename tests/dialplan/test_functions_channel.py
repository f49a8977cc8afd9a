"""Channel and variable functions: CALLERID, CHANNEL, HANGUPCAUSE, DIALPLAN_EXISTS, GLOBAL,
LOCAL, HASH, STRFTIME, TIMEOUT, CDR (Asterisk funcs/func_callerid.c, func_channel.c,
func_dialplan.c, func_global.c, app_stack.c, func_strings.c)."""

from __future__ import annotations

import asyncio
import random
import textwrap
from datetime import UTC

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.dryrun import DryRunResult, dry_run, dry_run_async
from pypbx.dialplan.functions.channel import split_callerid
from pypbx.dialplan.interpreter import GlobalVars
from pypbx.dialplan.parser import parse_dialplan

EPOCH = 1_700_000_000.0  # Tue 2023-11-14 22:13:20 UTC


def run(text: str, exten: str = "s", **kw: object) -> DryRunResult:
    dp = parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))
    return dry_run(  # type: ignore[arg-type]
        dp, "test", exten, clock=lambda: EPOCH, rng=random.Random(0), tz=UTC, **kw
    )


def noops(result: DryRunResult) -> list[str]:
    return [s.args for s in result.steps if s.app == "NoOp"]


def test_callerid_read_and_write() -> None:
    result = run(
        """
        [test]
        exten => s,1,NoOp(${CALLERID(num)}|${CALLERID(name)}|${CALLERID(all)}|${CALLERID(NUM)})
        same => n,Set(CALLERID(name)=Alice)
        same => n,NoOp(${CALLERID(all)})
        same => n,Set(CALLERID(all)="Bob Smith" <2001>)
        same => n,NoOp(${CALLERID(name)}|${CALLERID(number)})
        same => n,NoOp(${CALLERID(dnid)}|${CALLERID(num-pres)})
        same => n,NoOp(${CALLERID(bogus)})
        """,
        callerid="2000",
    )
    assert noops(result) == [
        "2000||2000|2000",
        '"Alice" <2000>',
        "Bob Smith|2001",
        "s|allowed_not_screened",
        "",
    ]
    assert any("Unknown callerid data type" in m for m in result.log)


def test_callerid_extension_matching_uses_the_current_number() -> None:
    result = run(
        """
        [test]
        exten => 100/_2XXX,1,NoOp(from a 2xxx phone)
        exten => 100,1,NoOp(anyone)
        """,
        "100",
        callerid="2001",
    )
    assert noops(result) == ["from a 2xxx phone"]


@pytest.mark.parametrize(
    ("text", "name", "num"),
    [
        ('"Bob" <100>', "Bob", "100"),
        ("Bob <100>", "Bob", "100"),
        ("100", "", "100"),
        ("Bob", "Bob", ""),
        ("<100>", "", "100"),
    ],
)
def test_split_callerid(text: str, name: str, num: str) -> None:
    assert split_callerid(text) == (name, num)


def test_channel_items_and_hangupcause() -> None:
    result = run(
        """
        [test]
        exten => s,1,NoOp(${CHANNEL(name)}|${CHANNEL(uniqueid)}|${CHANNEL(language)}|x)
        same => n,NoOp(${CHANNEL(state)})
        same => n,Set(CHANNEL(language)=fr)
        same => n,Answer()
        same => n,NoOp(${CHANNEL(language)}|${CHANNEL(state)}|${CHANNEL(channeltype)})
        same => n,NoOp(${HANGUPCAUSE()}|${HANGUPCAUSE})
        same => n,Hangup(21)
        exten => h,1,NoOp(${HANGUPCAUSE()})
        """
    )
    assert noops(result) == [
        "Local/dryrun-00000001|1.1|en|x",
        "Ring",
        "fr|Up|Local",
        "0|0",
        "21",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("test", "1"),
        ("nope", "0"),
        ("test,s", "1"),
        ("test,s,2", "1"),
        ("test,s,3", "0"),
        ("test,s,lbl", "1"),
        ("test,s,nolabel", "0"),
        ("test,_X.", "1"),  # pbx.c: a pattern name matches itself ("_x. will not match _x.")
        ("test,12345", "1"),
        ("other,i", "1"),
    ],
)
def test_dialplan_exists(args: str, expected: str) -> None:
    result = run(
        f"""
        [test]
        exten => s,1,NoOp(${{DIALPLAN_EXISTS({args})}})
        same => n(lbl),Hangup()
        exten => _X.,1,NoOp(pattern)
        [other]
        exten => i,1,NoOp(i)
        """
    )
    assert noops(result) == [expected]


def test_global_local_and_hash() -> None:
    result = run(
        """
        [test]
        exten => s,1,Set(GLOBAL(G)=g1)
        same => n,Set(L=outer)
        same => n,Gosub(sub,s,1)
        same => n,NoOp(${G} ${GLOBAL(G)} ${L})
        same => n,Set(HASH(h,a)=1)
        same => n,Set(HASH(h,b)=2)
        same => n,NoOp(${HASH(h,a)} ${HASH(h,b)} [${HASH(h,zz)}] ${HASHKEYS(h)} ${HASH(h)})
        [sub]
        exten => s,1,Set(LOCAL(L)=inner)
        same => n,NoOp(${L})
        same => n,Return()
        """
    )
    # channel variables are kept newest first (AST_LIST_INSERT_HEAD): HASHKEYS says b,a
    assert noops(result) == ["inner", "g1 g1 outer", "1 2 [] b,a 2,1"]


def test_global_write_is_shared_between_runs() -> None:
    dp = parse_dialplan(
        parse_text("[test]\nexten => s,1,Set(GLOBAL(COUNT)=${MATH(${COUNT}+1,i)})\n", "x.conf")
    )
    store = GlobalVars()
    store.load(dp)
    store.values["COUNT"] = "0"
    for _ in range(3):
        asyncio.run(dry_run_async(dp, "test", "s", globals_=store, clock=lambda: EPOCH))
    assert store.values["COUNT"] == "3"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (",UTC,%Y-%m-%d %H:%M:%S", "2023-11-14 22:13:20"),
        ("86400,UTC,%Y-%m-%d", "1970-01-02"),
        (",America/New_York,%H", "17"),
        (",UTC,%A", "Tuesday"),
        ("bad,UTC,%Y", "2023"),
    ],
)
def test_strftime(args: str, expected: str) -> None:
    result = run(f"[test]\nexten => s,1,NoOp(${{STRFTIME({args})}})\n")
    assert noops(result) == [expected]


def test_timeout_and_cdr() -> None:
    result = run(
        """
        [test]
        exten => s,1,Set(TIMEOUT(digit)=3)
        same => n,Set(TIMEOUT(response)=7)
        same => n,Set(TIMEOUT(absolute)=60)
        same => n,NoOp(${TIMEOUT(digit)} ${TIMEOUT(response)} ${TIMEOUT(absolute)})
        same => n,Set(CDR(userfield)=hello)
        same => n,NoOp(${CDR(userfield)})
        same => n,WaitExten()
        """
    )
    assert noops(result) == ["3 7 60", "hello"]
    assert "read max=1 timeout=7" in result.actions


@pytest.mark.parametrize(
    ("name", "num", "expected"),
    [("Alice", "100", '"Alice" <100>'), ("Alice", "", "Alice"), ("", "100", "100"), ("", "", "")],
)
def test_callerid_all_merges_like_asterisk(name: str, num: str, expected: str) -> None:
    result = run(
        f"""
        [test]
        exten => s,1,Set(CALLERID(name)={name})
        same => n,Set(CALLERID(num)={num})
        same => n,NoOp(${{CALLERID(all)}})
        """
    )
    assert noops(result) == [expected]
