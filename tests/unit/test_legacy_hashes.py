"""Dovecot password hashes (auth/legacy_hashes.py): vectors made by Dovecot's own
``doveadm pw -s SCHEME -p 'Pässword 1'`` and the SHA-crypt specification's examples
(each also what glibc's crypt(3) gives)."""

from __future__ import annotations

import pytest

from roost.admin import passwd_file
from roost.auth import legacy_hashes
from roost.auth.passwords import needs_rehash, verify_password

PASSWORD = "Pässword 1"
DOVEADM = {
    "SSHA512": "{SSHA512}dDNv5YgNqa5mw8zi70Wc6pOE2r3Sjqyae88xoHkAa7FGiJLdf4PEOMlU65vb8u4ojVfFG"
    "S5l0JSg1qPUQZimtKqZiKk=",
    "SHA512-CRYPT": "{SHA512-CRYPT}$6$0jcJ4cpLdAl.1.fw$RfDYwXlegs/375V26nbDT4WYmYscRV12ol7u6sa"
    "vewuG08g3j1LjUJ9YW95//Abo6klKVkbumvH4fTyhf1SEN0",
    "SHA256-CRYPT": "{SHA256-CRYPT}$5$sdw04.g1d0UMepQ.$FvECg36XkH7OcmkK/F16AKWloFKBUQe67ZtPmglVJK2",
    "BLF-CRYPT": "{BLF-CRYPT}$2y$05$FtYS4BoUTf/N5TLrSFErd./K7QicMG4JkJg3l3RV/QYtXeWdXZ/fC",
    "ARGON2I": "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$p1tFs02V7xCie7zcnXff8w$3wgHrdPLvfOPRvyp6O"
    "LTqmUjjcqVL6+UXhzCQw2x964",
    "ARGON2ID": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$oqVJmCy8Qls7wGO65n103w$m6Tw0ZduoRPU4R"
    "8gfG/eeFgECvPNamjCGVy6dSW+fZU",
    "SSHA256": "{SSHA256}a9xtXC03WkVV+7ikz3lo9ExLyr4wXhKIqLf1aSzopcB4KhVO",
    "PLAIN": "{PLAIN}Pässword 1",
}


@pytest.mark.parametrize("scheme", sorted(DOVEADM))
def test_doveadm_hashes_verify(scheme: str) -> None:
    stored = DOVEADM[scheme]
    assert legacy_hashes.scheme_of(stored) == scheme
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, "Pässword 2")
    assert not verify_password(stored, "")
    assert needs_rehash(stored)


def test_crypt_prefix_and_lower_case_scheme() -> None:
    crypt = DOVEADM["SHA512-CRYPT"].replace("{SHA512-CRYPT}", "{crypt}")
    assert verify_password(crypt, PASSWORD)
    blf = DOVEADM["BLF-CRYPT"].replace("{BLF-CRYPT}", "{CRYPT}")
    assert verify_password(blf, PASSWORD)
    # A scheme's name must match the hash it holds.
    assert not verify_password("{SHA256-CRYPT}" + DOVEADM["SHA512-CRYPT"][14:], PASSWORD)


def test_decomposed_password_matches_a_composed_hash() -> None:
    assert verify_password(DOVEADM["SHA256-CRYPT"], "Pa\u0308ssword 1")


@pytest.mark.parametrize(
    ("setting", "password", "expected"),
    [
        (
            "$6$saltstring",
            b"Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLi"
            "BFdcbYEdFCoEOfaS35inz1",
        ),
        (
            "$6$rounds=1400$anotherlongsaltstring",
            b"a very much longer text to encrypt.  This one even stretches over morethan one line.",
            "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6Io"
            "YN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
        ),
        (
            "$5$rounds=10000$saltstringsaltstring",
            b"Hello world!",
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
        ),
        (
            "$5$saltstring",
            b"Hello world!",
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        ),
    ],
)
def test_sha_crypt_specification_vectors(setting: str, password: bytes, expected: str) -> None:
    assert legacy_hashes.sha_crypt(password, setting) == expected


@pytest.mark.parametrize(
    "stored",
    [
        "{MD5-CRYPT}$1$abc$def",
        "{CRYPT}abJnggxhB/yWI",  # DES crypt
        "{SSHA512}not base64!",
        "{SHA512-CRYPT}$6$",
        "{BLF-CRYPT}$2y$99$short",
        "{ARGON2ID}$argon2id$garbage",
        "{NOSUCH}x",
        "{PLAIN",
    ],
)
def test_unsupported_or_malformed_never_match(stored: str) -> None:
    assert not verify_password(stored, PASSWORD)
    assert not verify_password(stored, "")


def test_passwd_file_parsing() -> None:
    text = (
        "# users\n\n"
        f"alice@example.org:{DOVEADM['BLF-CRYPT']}:1000:1000::/home/alice::\n"
        "bob:$6$roOi1E8DnAaTBaPB$N9PY4i7E/ld7niD24WV/aM6Wc1ZcQONzDUQ0loLEON68VIq/9365JE7Tnbm"
        "YsmI21lx5KOwfUgqDotTkZSEdi1\n"
        "carol:{MD5}abc\n"
        "dave::1000\n"
        "garbage line\n"
    )
    entries, problems = passwd_file.parse(text)
    assert [(e.line, e.user) for e in entries] == [(3, "alice@example.org"), (4, "bob")]
    assert entries[1].password_hash.startswith("{CRYPT}$6$")
    assert verify_password(entries[1].password_hash, "secret one")
    assert problems == [
        "line 5: carol: unsupported password scheme {MD5}",
        "line 6: dave: no password (login disabled)",
        "line 7: not user:password:...",
    ]
