"""SipStack driving user agents (the call layer's hook) on loopback."""

from __future__ import annotations

import asyncio
import random

from pypbx.sip.events import SessionEvent, SessionRejected
from pypbx.sip.useragent import UserAgent
from pypbx.transport.stack import SipStack, StackConfig


def ua_stack(contact: str, handler: object = None) -> SipStack:
    return SipStack(
        StackConfig(bindaddr="127.0.0.1", bindport=0),
        rng=random.Random(1),
        ua_factory=lambda ep: UserAgent(ep, contact=contact),
        session_handler=handler,  # type: ignore[arg-type]
    )


def test_invite_without_session_handler_is_refused_480() -> None:
    got: list[SessionEvent] = []

    async def main() -> None:
        server = ua_stack("<sip:s@127.0.0.1>")  # no session handler
        client = ua_stack("<sip:c@127.0.0.1>", lambda _s, ev: got.append(ev))
        await server.start()
        await client.start()
        try:
            ua = client.uas["UDP"]
            ua.invite(
                "sip:1@127.0.0.1",
                to="<sip:1@127.0.0.1>",
                from_="<sip:c@127.0.0.1>",
                dest=server.local_addr,
                now=client.loop.time(),
            )
            client.flush()
            for _ in range(200):
                if any(isinstance(e, SessionRejected) for e in got):
                    break
                await asyncio.sleep(0.01)
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())
    rejected = [e for e in got if isinstance(e, SessionRejected)]
    assert [e.status for e in rejected] == [480]


def test_user_agents_wrap_every_endpoint_once() -> None:
    async def main() -> tuple[int, bool]:
        stack = SipStack(StackConfig(bindaddr="127.0.0.1", bindport=0, tcp=True))
        await stack.start()
        try:
            made: list[UserAgent] = []

            def factory(ep: object) -> UserAgent:
                ua = UserAgent(ep, contact="<sip:x@127.0.0.1>")  # type: ignore[arg-type]
                made.append(ua)
                return ua

            first = dict(stack.use_user_agents(factory))
            again = stack.use_user_agents(factory)
            return len(made), first == again and set(first) == {"UDP", "TCP"}
        finally:
            await stack.close()

    count, same = asyncio.run(main())
    assert count == 2
    assert same
