"""asyncio glue for SIP: the only SIP sockets."""
