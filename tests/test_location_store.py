"""SQLite location store: round trip, expiry on load, batches, and kill -9 in a burst."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.location import Binding, Change, ChangeKind, Location
from pypbx.location_store import LocationStore

T0 = 1_800_000_000.0
ROOT = Path(__file__).resolve().parent.parent


def binding(i: int, *, expires_at: float = T0 + 3600, aor: str | None = None) -> Binding:
    return Binding(
        aor=aor or f"u{i}",
        contact=f"sip:u{i}@10.0.{i // 250}.{i % 250}:5060",
        expires_at=expires_at,
        call_id=f"call-{i}",
        cseq=i + 1,
        registered_at=T0,
        received=(f"203.0.113.{i % 250}", 40000 + i),
        transport="udp",
        user_agent="Phone/1.0",
        q="0.5" if i % 2 else None,
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    with LocationStore(tmp_path / "loc.sqlite3") as store:
        b = binding(3)
        store.save(b)
        store.save(binding(4, aor="u3"))
        assert store.load(T0) == sorted([b, binding(4, aor="u3")], key=lambda x: x.contact)
    with LocationStore(tmp_path / "loc.sqlite3") as again:
        assert binding(3) in again.load(T0)


def test_wal_and_synchronous_normal(tmp_path: Path) -> None:
    import sqlite3

    with LocationStore.in_dir(tmp_path) as store:
        store.save(binding(1))
        db = sqlite3.connect(tmp_path / "location.sqlite3")
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_load_drops_expired_rows(tmp_path: Path) -> None:
    with LocationStore(tmp_path / "x.db") as store:
        store.save(binding(1, expires_at=T0 + 10))
        store.save(binding(2, expires_at=T0 - 1))
        store.save(binding(3, expires_at=T0))
        assert [b.aor for b in store.load(T0)] == ["u1"]
        assert store.count() == 1


def test_save_replaces_and_delete_removes(tmp_path: Path) -> None:
    with LocationStore(tmp_path / "x.db") as store:
        store.save(binding(1))
        store.save(binding(1, expires_at=T0 + 99))
        assert [b.expires_at for b in store.load(T0)] == [T0 + 99]
        store.delete("u1", binding(1).contact)
        assert store.load(T0) == []


def test_apply_follows_location_changes(tmp_path: Path) -> None:
    store = LocationStore(tmp_path / "x.db")
    loc = Location()
    batch: list[Change] = []
    loc.on_change = batch.append
    loc.update("1000", "sip:a@10.0.0.1", expires=60, call_id="c", cseq=1, now=T0)
    loc.update("1000", "sip:b@10.0.0.2", expires=60, call_id="c", cseq=1, now=T0)
    loc.update("1000", "sip:a@10.0.0.1", expires=120, call_id="c", cseq=2, now=T0)
    loc.update("1000", "sip:b@10.0.0.2", expires=0, call_id="c", cseq=3, now=T0)
    assert [c.kind for c in batch] == [
        ChangeKind.ADDED,
        ChangeKind.ADDED,
        ChangeKind.REFRESHED,
        ChangeKind.REMOVED,
    ]
    assert store.apply(batch) == 4
    rows = store.load(T0)
    assert [(b.contact, b.expires_at) for b in rows] == [("sip:a@10.0.0.1", T0 + 120)]
    restored = Location()
    assert restored.load(rows, T0 + 60) == 1
    assert restored.lookup("1000", T0 + 60) == rows[0]
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(1, 9)), max_size=30))
def test_a_batch_of_runs_ends_as_the_changes_in_order(ops: list[tuple[bool, int, int]]) -> None:
    """Saves and removals of the same few bindings, interleaved in one batch (runs of one
    statement are written together): the file ends as applying them one by one would."""
    with tempfile.TemporaryDirectory() as tmp, LocationStore(Path(tmp) / "x.db") as store:
        expected: dict[str, float] = {}
        batch: list[Change] = []
        for save, i, minutes in ops:
            b = binding(i, expires_at=T0 + 60 * minutes)
            if save:
                batch.append(Change(ChangeKind.ADDED, b))
                expected[b.contact] = b.expires_at
            else:
                batch.append(Change(ChangeKind.REMOVED, b))
                expected.pop(b.contact, None)
        assert store.apply(batch) == len(ops)
        assert {b.contact: b.expires_at for b in store.load(T0)} == expected


def test_failed_batch_rolls_back(tmp_path: Path) -> None:
    with LocationStore(tmp_path / "x.db") as store:
        good = Change(ChangeKind.ADDED, binding(1))
        bad = Change(ChangeKind.ADDED, binding(2))
        object.__setattr__(bad.binding, "call_id", None)  # NOT NULL → IntegrityError
        with pytest.raises(Exception, match="NOT NULL"):
            store.apply([good, bad])
        assert store.load(T0) == []


_WRITER = """
import sys
sys.path.insert(0, {root!r})
from pypbx.location import Binding, Change, ChangeKind
from pypbx.location_store import LocationStore

store = LocationStore({path!r})
i = 0
while True:
    batch = []
    for _ in range(5):
        b = Binding(aor=f"u{{i}}", contact=f"sip:u{{i}}@10.0.0.1", expires_at=4e9,
                    call_id=f"c{{i}}", cseq=1, registered_at=1.0, received=("10.0.0.1", i),
                    user_agent="x" * 50)
        batch.append(Change(ChangeKind.ADDED, b))
        i += 1
    store.apply(batch)
    print(i, flush=True)
"""


def test_kill_9_during_a_burst_keeps_every_committed_binding(tmp_path: Path) -> None:
    path = tmp_path / "burst.sqlite3"
    code = textwrap.dedent(_WRITER.format(root=str(ROOT), path=str(path)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = 0
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 2000:
                break
    finally:
        proc.kill()  # SIGKILL: no clean shutdown, no checkpoint
        proc.wait()
    assert proc.returncode == -9
    with LocationStore(path) as store:
        assert store.integrity_check() == "ok"
        rows = store.load(T0)
        names = {b.aor for b in rows}
        missing = [i for i in range(committed) if f"u{i}" not in names]
        print(f"\ncommitted before kill: {committed}, rows after restart: {len(rows)}")
        assert missing == []
        assert len(rows) % 5 == 0  # whole batches only


def test_binding_memory_is_under_2_kib() -> None:
    import tracemalloc

    n = 10_000
    loc = Location(max_contacts=10)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(n):
        loc.update(
            f"{1000 + i}",
            f"sip:{1000 + i}@192.168.{i // 250}.{i % 250}:5060;transport=udp",
            expires=3600,
            call_id=f"{i:032x}@192.168.1.10",
            cseq=i,
            now=T0,
            received=(f"203.0.{i // 250}.{i % 250}", 5060 + i % 1000),
            user_agent="Linphone/5.2.0 (belle-sip/5.2.0)",
            q=None,
        )
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per = used / n
    print(f"\nmemory per binding: {per:.0f} bytes ({used / 1024 / 1024:.1f} MiB for {n})")
    assert per <= 2048


# -- the glue that batches the writes (pypbx.sipservice_store) --------------------------


def test_binding_writer_commits_a_burst_in_few_transactions_answers_after_commit(
    tmp_path: Path,
) -> None:
    import asyncio

    from pypbx.sip.events import ServerTxnKey
    from pypbx.sip.message import Response
    from pypbx.sipservice_store import BindingWriter

    store = LocationStore(tmp_path / "l.sqlite3")
    sent: list[tuple[int, int]] = []  # (answer number, rows on disk when it was sent)

    def send(key: ServerTxnKey, response: Response, source: tuple[str, int]) -> None:
        sent.append((int(key.branch), store.count()))

    async def burst() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        writer = BindingWriter(store, send, min_interval=0.05)
        started = loop.time()
        for i in range(40):  # one change per tick, as REGISTERs arriving one by one
            writer.add(Change(ChangeKind.ADDED, binding(i)))
            writer.hold(ServerTxnKey(str(i), "h", None, "REGISTER"), Response(200), ("h", 1))
            await asyncio.sleep(0)
        while len(sent) < 40 and loop.time() - started < 5:
            await asyncio.sleep(0.01)
        return writer.commits, loop.time() - started

    commits, _ = asyncio.run(burst())
    assert [n for n, _ in sent] == list(range(40))  # every answer, in order
    assert all(rows >= n + 1 for n, rows in sent)  # each one after its binding was saved
    assert commits <= 3  # 40 ticks: the first alone, the rest in one or two more
    assert store.count() == 40
    store.close()


def test_binding_writer_lone_change_is_written_in_the_next_tick(tmp_path: Path) -> None:
    import asyncio

    from pypbx.sipservice_store import BindingWriter

    store = LocationStore(tmp_path / "l.sqlite3")

    async def one() -> int:
        writer = BindingWriter(store, lambda *a: None, min_interval=10.0)
        writer.add(Change(ChangeKind.ADDED, binding(1)))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return store.count()

    assert asyncio.run(one()) == 1  # no wait for the first commit
    store.close()


def _wal_bytes_after_burst(path: Path, checkpoint_every: int) -> tuple[int, int]:
    with LocationStore(path, checkpoint_every=checkpoint_every) as store:
        for round_ in range(20):
            batch = [
                Change(ChangeKind.ADDED, binding(i, expires_at=T0 + 3600 + round_))
                for i in range(200)
            ]
            store.apply(batch)
            store.wait_checkpoint(10.0)  # let a started checkpoint finish, as time would
        wal = path.with_name(path.name + "-wal").stat().st_size
        assert len(store.load(T0)) == 200
        return wal, store.checkpoints


def test_background_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    """Without them the WAL grows with every commit (the automatic checkpoint is only a
    backstop); with them it is copied back while the writer goes on, and restarts."""
    big, none = _wal_bytes_after_burst(tmp_path / "a.sqlite3", checkpoint_every=10**9)
    small, done = _wal_bytes_after_burst(tmp_path / "b.sqlite3", checkpoint_every=400)
    assert none == 0
    assert done >= 5
    assert small * 3 < big


def test_commits_do_not_checkpoint_by_themselves(tmp_path: Path) -> None:
    with LocationStore(tmp_path / "c.sqlite3") as store:
        (pages,) = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages >= 10_000  # the backstop, far beyond SQLite's 1000
