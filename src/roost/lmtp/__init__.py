"""LMTP (RFC 2033): mail handed in by a trusted MTA, one reply per recipient.

``connection.py`` is the asyncio glue around the sans-IO core in ``roost.smtp``;
``context.py`` what a connection needs from the server; the delivery itself is
``roost.delivery``, shared with ``roost deliver``.
"""
