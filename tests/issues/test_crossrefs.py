from __future__ import annotations

from datetime import date

from issues.crossrefs import link_cross_references, parse_cross_references

SEED_REFERENCE = (
    "(Belapan, January 5; Minsk Radio, January 6; see the Monitor, October 7, December 8-10, "
    "15-16; Fortnight in Review, October 8, December 17, 1999)."
)


def days(*triples: tuple[int, int, int]) -> list[date]:
    return [date(*t) for t in triples]


def test_seed_reference_names_two_publications_with_their_dates():
    refs = parse_cross_references(SEED_REFERENCE)

    assert [r.publication for r in refs] == ["monitor", "fortnight in review"]
    assert refs[0].dates == days(
        (1999, 10, 7), (1999, 12, 8), (1999, 12, 9), (1999, 12, 10), (1999, 12, 15), (1999, 12, 16)
    )
    assert refs[1].dates == days((1999, 10, 8), (1999, 12, 17))


def test_bare_day_ranges_continue_the_month_before_them():
    (ref,) = parse_cross_references("(see the Monitor, December 8-10, 15-16, 1999)")

    assert [(m.month, m.day) for m in ref.mentions] == [(12, 8), (12, 10), (12, 15), (12, 16)]


def test_a_year_applies_to_the_dates_before_it_only():
    (ref,) = parse_cross_references("(see the Monitor, December 30, 1998, January 4, 1999)")

    assert ref.dates == days((1998, 12, 30), (1999, 1, 4))


def test_dates_without_a_year_are_unresolved_unless_a_default_is_given():
    assert parse_cross_references("(see the Monitor, March 3)")[0].dates == []
    (ref,) = parse_cross_references("(see the Monitor, March 3)", default_year=2000)
    assert ref.dates == days((2000, 3, 3))


def test_source_lists_without_see_are_not_references():
    assert parse_cross_references("(Itar-Tass, December 15-16, December 22, 1999)") == []


def test_also_and_abbreviated_months_are_understood():
    (ref,) = parse_cross_references("(see also the Prism, Sept. 3, 2000)")
    assert (ref.publication, ref.dates) == ("prism", days((2000, 9, 3)))


def test_impossible_dates_are_ignored():
    (ref,) = parse_cross_references("(see the Monitor, February 30, March 1, 1999)")
    assert ref.dates == days((1999, 3, 1))


def test_linking_wraps_only_dates_whose_issue_exists():
    existing = {("monitor", date(1999, 12, 10)): "/monitor/5/200/"}

    html = link_cross_references(SEED_REFERENCE, lambda m: existing.get((m.publication, m.date)))

    assert 'December 8-<a href="/monitor/5/200/">10</a>, 15-16' in html
    assert html.count("<a ") == 1
    assert html.replace('<a href="/monitor/5/200/">10</a>', "10") == SEED_REFERENCE
