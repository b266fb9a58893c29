"""Sans-IO POP3: line framing, command grammar, responses and message encoding.

Nothing here imports asyncio or the store: bytes in, typed values out, and back.
"""
