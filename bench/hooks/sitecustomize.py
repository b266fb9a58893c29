"""Imported at start-up by every Python process of the Roost under test — the
supervisor and each worker — because the benchmark puts this directory on their
PYTHONPATH. It does one thing, and only when ``ROOST_BENCH_NO_REHASH=1``: it turns off
the upgrade of password hashes at sign-in.

Why: the benchmark gives its load accounts a cheap argon2id hash (the same string in
Roost and in Dovecot's passwd-file) so that 10,000 sign-ins measure the IMAP server and
not the key-derivation function. Roost verifies any argon2id hash with the parameters
written in it, but after a successful sign-in it replaces a hash made with other
parameters than its default, and every later sign-in would then cost a full-strength
derivation in Roost and not in Dovecot. The LOGIN-cost scenario uses an account whose
hash already has Roost's default parameters, so that cost is measured as well.
"""

import os
import sys

if os.environ.get("ROOST_BENCH_NO_REHASH") == "1":
    try:
        from roost.auth import authenticator

        _defaults = authenticator.StoreAuthenticator.__init__.__kwdefaults__
        if _defaults is None or "rehash" not in _defaults:
            raise LookupError("StoreAuthenticator has no 'rehash' keyword")
        _defaults["rehash"] = False
    except Exception as error:  # say so, and run anyway: sign-ins will just cost more
        print(f"roost bench: could not turn off hash upgrades: {error}", file=sys.stderr)
