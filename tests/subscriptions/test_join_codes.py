"""Join codes: eight characters of Crockford base32, unique, typed in any form."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from subscriptions.joincodes import ALPHABET, join_code_display, join_code_new, join_code_normalize
from subscriptions.models import Subscriber


@pytest.mark.parametrize(
    "typed",
    [
        "ABCD-EF01",
        "abcd-ef01",
        "abcdef01",
        " ABCD EF01 ",
        "ab cd - ef 0 1",
        "ABCD-EFO1",  # O for 0
        "ABCD-EF0I",  # I for 1
        "ABCD-EF0l",  # l for 1
        "ABCD\u2009EF01",  # a thin space pasted from a PDF
    ],
)
def test_every_way_of_typing_a_code_gives_the_canonical_code(typed):
    assert join_code_normalize(typed) == "ABCDEF01"


@pytest.mark.parametrize(
    "typed", ["", "ABCD-EF0", "ABCD-EF012", "ABCD-EFU1", "ABCD_EF01", "ÄBCDEF01"]
)
def test_what_cannot_be_a_code_is_refused(typed):
    assert join_code_normalize(typed) is None


def test_new_codes_are_eight_crockford_characters_and_shown_in_halves():
    codes = {join_code_new() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("ILOU") & set(ALPHABET) and len(ALPHABET) == 32
    assert join_code_display("ABCDEF01") == "ABCD-EF01"
    code = codes.pop()
    assert join_code_normalize(join_code_display(code).lower()) == code


def test_a_code_belongs_to_one_reader(db):
    Subscriber.objects.create(fax="202 555 0101", join_code="ABCDEF01")
    with pytest.raises(IntegrityError):
        Subscriber.objects.create(postal_address="1 Main St", join_code="ABCDEF01")
