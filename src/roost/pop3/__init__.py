"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034) and response
codes (RFC 2449 §8, RFC 3206), over the same store as IMAP.

The same split as ``roost.imap``: ``wire`` (sans-IO: lines in, typed commands; typed
responses and message bodies out), ``session`` and ``commands`` (the state machine of
one connection, no sockets), ``maildrop`` (a session's fixed view of INBOX), and
``connection`` (the asyncio glue).
"""
