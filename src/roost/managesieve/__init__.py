"""ManageSieve (RFC 5804): users upload, check and activate their Sieve scripts.

``wire`` (sans-IO receiver and response syntax), ``session`` (the state machine over the
Store and the Authenticator), ``connection`` (asyncio glue, STARTTLS, time-outs).
"""
