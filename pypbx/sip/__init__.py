"""Pure SIP (RFC 3261): messages, transactions, dialogs, digest auth, SDP. No I/O."""
