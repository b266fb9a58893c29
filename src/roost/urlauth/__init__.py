"""IMAP URLs with URLAUTH (RFC 5092, RFC 4467), protocol-neutral: IMAP's GENURLAUTH
and URLFETCH and submission's BURL (RFC 4468) parse, sign and check them here.

``url.py`` parses and prints the URLs (pure); ``access.py`` makes and checks the
INTERNAL tokens and fetches what a valid URL points at, through the Store interface.
"""
