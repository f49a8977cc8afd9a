"""Location service: bindings, §10.3 ordering, cap, expiry, change log (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.location import Binding, Change, ChangeKind, Location, LocationError

T0 = 1_800_000_000.0


def add(
    loc: Location,
    contact: str = "sip:a@10.0.0.1",
    *,
    aor: str = "1000",
    expires: int = 60,
    call_id: str = "c1",
    cseq: int = 1,
    now: float = T0,
    received: tuple[str, int] | None = ("203.0.113.1", 5060),
    q: str | None = None,
) -> Change | None:
    return loc.update(
        aor,
        contact,
        expires=expires,
        call_id=call_id,
        cseq=cseq,
        now=now,
        received=received,
        q=q,
    )


def test_add_refresh_remove_are_reported_to_the_listener() -> None:
    seen: list[Change] = []
    loc = Location(on_change=seen.append)
    a = add(loc)
    b = add(loc, cseq=2, now=T0 + 10, expires=100)
    c = add(loc, cseq=3, expires=0)
    assert [x.kind for x in seen] == [ChangeKind.ADDED, ChangeKind.REFRESHED, ChangeKind.REMOVED]
    assert seen == [a, b, c]
    assert b is not None
    assert b.binding.registered_at == T0
    assert b.binding.expires_at == T0 + 110
    assert len(loc) == 0
    assert add(loc, expires=0) is None  # removing nothing reports nothing


@pytest.mark.parametrize(
    ("call_id", "cseq", "refused"),
    [("c1", 5, True), ("c1", 4, True), ("c1", 6, False), ("other", 1, False)],
)
def test_out_of_order_rule(call_id: str, cseq: int, refused: bool) -> None:
    loc = Location()
    add(loc, call_id="c1", cseq=5)
    for contact in ("sip:a@10.0.0.1", None):
        if refused:
            with pytest.raises(LocationError) as info:
                loc.check("1000", contact, call_id, cseq)
            assert info.value.status == 500
        else:
            loc.check("1000", contact, call_id, cseq)
    loc.check("1000", "sip:new@10.0.0.9", "c1", 1)  # unknown contact: nothing to compare


def test_cap_counts_live_distinct_contacts() -> None:
    loc = Location(max_contacts=2)
    add(loc, "sip:a@x")
    add(loc, "sip:b@x", expires=10)
    loc.check_room("1000", ["sip:a@x", "sip:b@x"], T0)  # refreshes only
    with pytest.raises(LocationError) as info:
        loc.check_room("1000", ["sip:c@x"], T0)
    assert info.value.status == 503
    loc.check_room("1000", ["sip:c@x"], T0 + 10)  # b has expired by then
    loc.check_room("2000", ["sip:c@x", "sip:d@x"], T0)  # the cap is per AOR
    with pytest.raises(ValueError, match="max_contacts"):
        Location(max_contacts=0)


def test_expiry_and_next_expiry() -> None:
    loc = Location()
    add(loc, "sip:a@x", expires=30)
    add(loc, "sip:b@x", expires=89, now=T0 + 1)
    assert loc.next_expiry() == T0 + 30
    assert [b.contact for b in loc.bindings("1000", T0 + 29)] == ["sip:b@x", "sip:a@x"]
    assert [b.contact for b in loc.bindings("1000", T0 + 30)] == ["sip:b@x"]
    gone = loc.expire(T0 + 30)
    assert [(c.kind, c.binding.contact) for c in gone] == [(ChangeKind.REMOVED, "sip:a@x")]
    assert loc.next_expiry() == T0 + 90
    assert loc.expire(T0 + 1000)[0].binding.contact == "sip:b@x"
    assert loc.next_expiry() is None
    assert loc.aors() == []


def test_expired_binding_re_added_counts_as_new() -> None:
    loc = Location()
    add(loc, expires=10)
    change = add(loc, cseq=2, now=T0 + 20)
    assert change is not None
    assert change.kind is ChangeKind.ADDED
    assert change.binding.registered_at == T0 + 20


def test_order_is_q_then_newest() -> None:
    loc = Location()
    add(loc, "sip:old@x", now=T0)
    add(loc, "sip:new@x", now=T0 + 1)
    add(loc, "sip:low@x", now=T0 + 2, q="0.1")
    add(loc, "sip:high@x", now=T0 - 5, q="1.0", expires=100)
    order = [b.contact for b in loc.bindings("1000", T0 + 3)]
    assert order == ["sip:new@x", "sip:old@x", "sip:high@x", "sip:low@x"]
    best = loc.lookup("1000", T0 + 3)
    assert best is not None
    assert best.contact == "sip:new@x"
    assert loc.lookup("nobody", T0) is None


def test_source_index_follows_bindings() -> None:
    loc = Location()
    src = ("203.0.113.9", 7000)
    add(loc, "sip:a@x", received=src)
    add(loc, "sip:b@x", received=src)
    assert loc.aor_at(src) == "1000"
    loc.remove("1000", "sip:a@x")
    assert loc.aor_at(src) == "1000"  # b still came from there
    loc.remove("1000", "sip:b@x")
    assert loc.aor_at(src) is None
    assert loc.remove("1000", "sip:b@x") is None


def test_remove_all() -> None:
    loc = Location()
    add(loc, "sip:a@x")
    add(loc, "sip:b@x")
    add(loc, "sip:c@x", aor="2000")
    assert len(loc.remove_all("1000")) == 2
    assert loc.aors() == ["2000"]


def test_load_skips_expired_and_reports_nothing() -> None:
    seen: list[Change] = []
    loc = Location(on_change=seen.append)
    rows = [
        Binding("1000", "sip:a@x", T0 + 5, "c", 1, T0 - 100, ("1.2.3.4", 5060)),
        Binding("1000", "sip:b@x", T0 - 5, "c", 1, T0 - 100, ("1.2.3.4", 5061)),
    ]
    assert loc.load(rows, T0) == 1
    assert seen == []
    assert loc.aor_at(("1.2.3.4", 5060)) == "1000"
    assert loc.aor_at(("1.2.3.4", 5061)) is None


@pytest.mark.parametrize(
    ("left", "remaining"), [(60.0, 60), (59.2, 60), (0.4, 1), (0.0, 0), (-3.0, 0)]
)
def test_remaining_rounds_up(left: float, remaining: int) -> None:
    b = Binding("a", "sip:a@x", T0 + left, "c", 1, T0)
    assert b.remaining(T0) == remaining


_ops = st.lists(
    st.tuples(
        st.sampled_from(["1000", "1001"]),
        st.sampled_from(["sip:a@x", "sip:b@x", "sip:c@x"]),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=0, max_value=40),
        st.sampled_from([("1.1.1.1", 1), ("2.2.2.2", 2)]),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(_ops)
def test_change_log_replays_to_the_same_state(
    ops: list[tuple[str, str, int, int, tuple[str, int]]],
) -> None:
    log: list[Change] = []
    loc = Location(on_change=log.append)
    now = T0
    for aor, contact, expires, step, src in ops:
        now += step
        loc.update(aor, contact, expires=expires, call_id="c", cseq=1, now=now, received=src)
        loc.expire(now)
    replay: dict[tuple[str, str], Binding] = {}
    for change in log:
        key = (change.binding.aor, change.binding.contact)
        if change.kind is ChangeKind.REMOVED:
            assert key in replay
            del replay[key]
        else:
            replay[key] = change.binding
    assert sorted(replay.values(), key=repr) == sorted(loc.all_bindings(), key=repr)
    for b in loc.all_bindings():
        assert b.received is not None
        assert loc.aor_at(b.received) is not None
    live_sources = {b.received for b in loc.all_bindings()}
    for src in [("1.1.1.1", 1), ("2.2.2.2", 2)]:
        assert (loc.aor_at(src) is not None) == (src in live_sources)


# (seconds later, contact number, expires; 0 removes) or an expiry sweep (None)
_STEPS = st.lists(
    st.one_of(st.none(), st.tuples(st.integers(0, 40), st.integers(0, 4), st.integers(0, 60))),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_STEPS)
def test_expire_with_its_soonest_bound_drops_exactly_the_due_bindings(steps: list) -> None:
    """The sweep skips its walk while no binding can be due; what it drops and keeps is
    what a full walk finds (a model of the live bindings checks both)."""
    loc = Location(max_contacts=100)
    model: dict[str, float] = {}  # contact -> expires_at
    now, cseq = T0, 0
    for step in steps:
        if step is None:
            removed = {c.binding.contact for c in loc.expire(now)}
            due = {k for k, at in model.items() if at <= now}
            assert removed == due
            model = {k: at for k, at in model.items() if at > now}
            continue
        later, n, expires = step
        now += later
        cseq += 1
        add(loc, f"sip:{n}@x", expires=expires, cseq=cseq, now=now)
        if expires:
            model[f"sip:{n}@x"] = now + expires
        else:
            model.pop(f"sip:{n}@x", None)
    now += 1
    loc.expire(now)
    assert {b.contact for b in loc.all_bindings()} == {k for k, at in model.items() if at > now}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2), st.sampled_from([0, 60])), max_size=40)
)
def test_aor_at_is_the_latest_binding_from_that_source(
    ops: list[tuple[int, int, int]],
) -> None:
    """Many phones behind one or a few addresses, registering, refreshing and leaving in any
    order: aor_at names the AOR of the newest live binding from the address (a list model)."""
    loc = Location(max_contacts=10)
    model: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for step, (user, port, expires) in enumerate(ops):
        aor, contact, src = f"u{user}", f"sip:u{user}@10.0.0.1", ("203.0.113.1", 5060 + port)
        for keys in model.values():  # a refresh or removal leaves the old source's index
            if (aor, contact) in keys:
                keys.remove((aor, contact))
        if expires:
            model.setdefault(src, []).append((aor, contact))
        loc.update(aor, contact, expires=expires, call_id=f"c{step}", cseq=1, now=0.0, received=src)
        for p in range(3):
            where = ("203.0.113.1", 5060 + p)
            keys = model.get(where)
            assert loc.aor_at(where) == (keys[-1][0] if keys else None)
