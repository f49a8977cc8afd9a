"""``pypbx dialplan run``: the dry run's text and JSON forms, its exit codes, and the
tutorial's three calls (issue 4 item 6 and its proof)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pypbx.dialplan.dryrun import run_cli

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial"
TUTORIAL_PLAN = """
[general]
static=yes
writeprotect=no
clearglobalvars=no

[globals]
TRUNK=flowroute

[outgoing]
exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@${GLOBAL(TRUNK)})

[inbound]
exten => 18182223333,1,Dial(SIP/1000)
"""


@pytest.fixture(params=["seed", "examples"])
def tutorial_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The seed tutorial's plan as written there, and the project's examples/tutorial."""
    if request.param == "examples":
        if not (TUTORIAL / "extensions.conf").exists():
            pytest.skip("examples/tutorial not present")
        return TUTORIAL
    (tmp_path / "extensions.conf").write_text(TUTORIAL_PLAN)
    return tmp_path


def cli_json(config_dir: Path, context: str, exten: str, **kw: object) -> dict[str, object]:
    out, code = run_cli(
        str(config_dir),
        context,
        exten,
        kw.get("callerid"),  # type: ignore[arg-type]
        kw.get("variables", {}),  # type: ignore[arg-type]
        str(kw.get("dialstatus", "ANSWER")),
        True,
    )
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_tutorial_outgoing_call_dials_the_trunk(tutorial_dir: Path) -> None:
    data = cli_json(tutorial_dir, "outgoing", "18002223333")
    assert data["steps"] == [
        {
            "context": "outgoing",
            "exten": "18002223333",
            "priority": 1,
            "app": "Dial",
            "args": "SIP/18002223333@flowroute",
        }
    ]
    assert data["hangup_cause"] == 16


def test_tutorial_inbound_call_rings_1000(tutorial_dir: Path) -> None:
    data = cli_json(tutorial_dir, "inbound", "18182223333")
    assert [(s["app"], s["args"]) for s in data["steps"]] == [("Dial", "SIP/1000")]  # type: ignore[union-attr,index]


def test_tutorial_911_reaches_no_extension(tutorial_dir: Path) -> None:
    data = cli_json(tutorial_dir, "outgoing", "911")
    assert data["steps"] == []
    assert data["hangup_cause"] == 1  # UNALLOCATED: what a 404 maps to
    assert data["end"] == "invalid"
    assert any("no invalid handler" in m for m in data["log"])  # type: ignore[union-attr]


def test_json_contract_field_names(tutorial_dir: Path) -> None:
    data = cli_json(tutorial_dir, "outgoing", "18002223333", dialstatus="busy")
    assert {"steps", "hangup_cause"} <= set(data)
    for step in data["steps"]:  # type: ignore[union-attr]
        assert set(step) == {"context", "exten", "priority", "app", "args"}
    assert data["hangup_cause"] == 17


def test_text_form_lists_each_step(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text(
        textwrap.dedent(
            """
            [demo]
            exten => 100,1,Answer()
            same => n,Set(GREETING=${WHO})
            same => n,Playback(hello-${GREETING})
            same => n,Hangup()
            """
        )
    )
    out, code = run_cli(str(tmp_path), "demo", "100", "2000", {"WHO": "world"}, "ANSWER", False)
    assert code == 0
    lines = out.splitlines()
    assert lines[:7] == [
        '    -- Executing [100@demo:1] Answer("")',
        "    >> answer",
        '    -- Executing [100@demo:2] Set("GREETING=world")',
        '    -- Executing [100@demo:3] Playback("hello-world")',
        "    >> play hello-world",
        '    -- Executing [100@demo:4] Hangup("")',
        "    >> hangup cause=16",
    ]
    assert lines[-1] == "  == Call ended (hangup), hangup cause 16 (NORMAL_CLEARING)"


@pytest.mark.parametrize(
    ("context", "dialstatus", "message"),
    [
        ("nosuch", "ANSWER", "there is no context 'nosuch'"),
        ("outgoing", "MAYBE", "--dialstatus must be one of"),
    ],
)
def test_bad_input_exit_code(tmp_path: Path, context: str, dialstatus: str, message: str) -> None:
    (tmp_path / "extensions.conf").write_text(TUTORIAL_PLAN)
    out, code = run_cli(str(tmp_path), context, "1", None, {}, dialstatus, False)
    assert code == 2
    assert message in out


def test_missing_config_exit_code(tmp_path: Path) -> None:
    out, code = run_cli(str(tmp_path / "none"), "outgoing", "1", None, {}, "ANSWER", True)
    assert code == 2
    assert "cannot read" in out


def test_dialstatus_drives_the_rest_of_the_plan(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text(
        textwrap.dedent(
            """
            [demo]
            exten => 100,1,Dial(SIP/100,20)
            same => n,GotoIf($["${DIALSTATUS}" = "BUSY"]?busy)
            same => n,Voicemail(100)
            same => n(busy),Busy()
            """
        )
    )
    busy = cli_json(tmp_path, "demo", "100", dialstatus="BUSY")
    assert [s["app"] for s in busy["steps"]] == ["Dial", "GotoIf", "Busy"]  # type: ignore[index,union-attr]
    noanswer = cli_json(tmp_path, "demo", "100", dialstatus="NOANSWER")
    assert [s["app"] for s in noanswer["steps"]] == ["Dial", "GotoIf", "Voicemail"]  # type: ignore[index,union-attr]
    assert any("No application 'Voicemail'" in m for m in noanswer["log"])  # type: ignore[union-attr]


def test_digits_drive_an_ivr(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text(
        textwrap.dedent(
            """
            [ivr]
            exten => s,1,Background(press-1-for-sales)
            same => n,WaitExten(5)
            exten => 1,1,Dial(SIP/sales)
            exten => t,1,Hangup()
            """
        )
    )
    out, code = run_cli(str(tmp_path), "ivr", "s", None, {}, "ANSWER", True, digits="1")
    assert code == 0
    steps = json.loads(out)["steps"]
    assert [(s["exten"], s["app"]) for s in steps] == [("s", "Background"), ("1", "Dial")]
    out, _ = run_cli(str(tmp_path), "ivr", "s", None, {}, "ANSWER", True)
    assert [s["exten"] for s in json.loads(out)["steps"]] == ["s", "s", "t"]
