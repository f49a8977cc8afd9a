"""Master.csv exactly as cdr_csv.c writes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pypbx.cdr import record
from pypbx.cdr.csvfile import CsvBackend, CsvOptions, csv_line
from pypbx.cdr.record import AmaFlags, Cdr, Disposition

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
UTC = CsvOptions(usegmtime=True)

ANSWERED = Cdr(
    T0, T0 + 5, T0 + 65, clid='"Bob ""B"" Smith" <2000>', src="2000", dst="1000",
    dcontext="from-internal", channel="SIP/2000-00000001", dstchannel="SIP/1000-00000002",
    lastapp="Dial", lastdata="SIP/1000,20,tT", disposition=Disposition.ANSWERED,
    amaflags=AmaFlags.BILLING, accountcode="acme", uniqueid="1700000000.7", userfield="vip",
)  # fmt: skip


def test_answered_line() -> None:
    assert csv_line(ANSWERED, UTC) == (
        '"acme","2000","1000","from-internal","""Bob """"B"""" Smith"" <2000>",'
        '"SIP/2000-00000001","SIP/1000-00000002","Dial","SIP/1000,20,tT",'
        '"2023-11-14 22:13:20","2023-11-14 22:13:25","2023-11-14 22:14:25",65,60,'
        '"ANSWERED","BILLING"\n'
    )


def test_unanswered_line_has_empty_unquoted_answer() -> None:
    cdr = Cdr(T0, None, T0 + 7, src="1000", dst="5", disposition=Disposition.NO_ANSWER)
    assert csv_line(cdr, UTC) == (
        '"","1000","5","","","","","","","2023-11-14 22:13:20",,"2023-11-14 22:13:27",7,0,'
        '"NO ANSWER","DOCUMENTATION"\n'
    )


@pytest.mark.parametrize(
    ("options", "tail"),
    [
        (CsvOptions(usegmtime=True, loguniqueid=True), '"BILLING","1700000000.7"\n'),
        (CsvOptions(usegmtime=True, loguserfield=True), '"BILLING","vip"\n'),
        (
            CsvOptions(usegmtime=True, loguniqueid=True, loguserfield=True),
            '"BILLING","1700000000.7","vip"\n',
        ),
    ],
)
def test_optional_columns(options: CsvOptions, tail: str) -> None:
    assert csv_line(ANSWERED, options).endswith(tail)


def test_local_time_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert '"2023-11-14 14:13:20"' in csv_line(ANSWERED)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_backend_appends_master_and_account_files(tmp_path: Path) -> None:
    backend = CsvBackend(tmp_path / "cdr-csv", UTC)
    backend.write(ANSWERED)
    plain = Cdr(T0, None, T0 + 1)
    backend.write(plain)
    backend.close()
    master = (tmp_path / "cdr-csv" / "Master.csv").read_text()
    assert master == csv_line(ANSWERED, UTC) + csv_line(plain, UTC)
    assert (tmp_path / "cdr-csv" / "acme.csv").read_text() == csv_line(ANSWERED, UTC)
    assert sorted(os.listdir(tmp_path / "cdr-csv")) == ["Master.csv", "acme.csv"]


@pytest.mark.parametrize("account", ["../evil", ".hidden", "a/b"])
def test_insecure_account_code_not_used_as_file_name(tmp_path: Path, account: str) -> None:
    backend = CsvBackend(tmp_path, UTC)
    backend.write(Cdr(T0, None, T0, accountcode=account))
    assert sorted(os.listdir(tmp_path)) == ["Master.csv"]


def test_accountlogs_off_and_registry_default_place(tmp_path: Path) -> None:
    backend = CsvBackend(tmp_path, CsvOptions(accountlogs=False))
    backend.write(ANSWERED)
    assert os.listdir(tmp_path) == ["Master.csv"]
    factory, _ = record.BACKENDS["csv"]
    made = factory(tmp_path / "data")
    assert isinstance(made, CsvBackend)
    assert made.master == tmp_path / "data" / "cdr-csv" / "Master.csv"
