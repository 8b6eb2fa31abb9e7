from __future__ import annotations

import json

import pytest

from bench import chart


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "run `make bench` first"),
        ("not json", "run `make bench` first"),
        (json.dumps({"results": {"fanout": {"records_per_s": 1.0}}}), "left them out"),
    ],
)
def test_the_chart_is_left_as_it_was_without_sending_results(
    tmp_path, monkeypatch, capsys, content, said
):
    monkeypatch.setattr(chart, "RESULTS", tmp_path)
    monkeypatch.setattr(chart, "OUT", tmp_path / "benchmarks.png")
    if content is not None:
        (tmp_path / "latest.json").write_text(content)

    assert chart.main() == 1
    assert said in capsys.readouterr().err
    assert not (tmp_path / "benchmarks.png").exists()
