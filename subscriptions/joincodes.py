"""Join codes: the short personal code printed on an offline reader's letter, typed at
/join/ to move that reader to email.

Eight characters of Crockford's base32 (digits and letters without I, L, O and U), drawn
with `secrets`: 32**8, about 10**12 codes, so that guessing one behind the rate limits is
hopeless. Stored canonical (`ABCDEFGH`), shown in two halves (`ABCD-EFGH`); typed in any
case, with spaces or dashes, and with the look-alikes Crockford maps (O is 0, I and L are
1)."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def join_code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def join_code_normalize(typed: str) -> str | None:
    """The canonical code for what a reader typed, or None if it cannot be a code."""
    code = "".join(typed.split()).replace("-", "").upper().translate(_LOOK_ALIKES)
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def join_code_display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if code else ""
