"""The SIP channel technology: ``Dial(SIP/peer)``, ``SIP/number@peer``, ``SIP/peer/number``
(chan_sip ``sip_request_call``): the peer found, the INVITE planned (Request-URI, From from
``fromuser``/``fromdomain`` or the caller, To, next hop from the peer's host or registration,
credentials for a provider's challenge), an outgoing :class:`SipChannel` made.
"""

from __future__ import annotations

import logging

from pypbx.call.channel import Channel
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import CallEnv
from pypbx.sip.auth import ClientAuthState

__all__ = ["SipTech"]

log = logging.getLogger("pypbx.call")


class SipTech:
    """``Dial(SIP/...)``: find the peer, plan the INVITE (R-URI, From, To, next hop, auth)."""

    name = "SIP"
    description = "Session Initiation Protocol (SIP)"

    def __init__(self, env: CallEnv) -> None:
        self.env = env

    def request(
        self, resource: str, caller: Channel, *, inherit: dict[str, str] | None = None
    ) -> SipChannel | None:
        number = ""
        peer_name = resource
        if "@" in resource:
            number, _, peer_name = resource.partition("@")
        elif "/" in resource:
            peer_name, _, number = resource.partition("/")
        peer = self.env.directory.get(peer_name)
        if peer is None:
            log.warning("Unable to create channel of type 'SIP' (cause 20 - Unknown peer)")
            return None
        target = self.env.directory.target(peer.name, self.env.wall_time())
        if target is None:
            log.warning("Unable to create channel of type 'SIP': %s is unreachable", peer.name)
            return None
        dest = target[0]
        host = f"{dest[0]}:{dest[1]}"
        if peer.dynamic and not number:
            binding = self.env.directory.binding(peer.name, self.env.wall_time())
            uri = binding.contact if binding is not None else f"sip:{peer.name}@{host}"
            to_user = peer.name
        else:
            to_user = number or peer.name
            uri = f"sip:{to_user}@{host}"
        to = f"<sip:{to_user}@{host}>"
        cid_num = getattr(caller, "callerid_num", "") or ""
        cid_name = getattr(caller, "callerid_name", "") or ""
        from_user = peer.fromuser or cid_num or "anonymous"
        from_host = peer.fromdomain or self.env.sip_host
        display = f'"{cid_name}" ' if cid_name and '"' not in cid_name else ""
        from_ = f"{display}<sip:{from_user}@{from_host}>"
        auth = None
        if peer.secret:
            auth = ClientAuthState(peer.username or peer.auth_name, peer.secret)
        name, uniqueid = self.env.namer.next("SIP", peer.name, self.env.wall_time())
        leg = SipChannel(self.env, name, uniqueid, peer=peer, outgoing=True)
        leg.invite_plan = (uri, to, from_, dest, auth)
        leg.callerid_num, leg.callerid_name = cid_num, cid_name
        leg.exten = to_user
        for k, v in (inherit or {}).items():
            leg.vars.set(k, v)
        self.env.channels.add(leg)
        return leg
