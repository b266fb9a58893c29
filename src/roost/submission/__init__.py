"""Mail out from signed-in users (RFC 6409): ``connection.py`` drives the sans-IO
SMTP core, ``policy.py`` says what an account may send as, ``relay.py`` hands the
message to the site's MTA, ``sent.py`` keeps the Sent copy."""
