"""Benchmark result printing: JSON lines with the tag first, or aligned key/value blocks."""

import json

from mechinterp.reporting import print_results


def test_print_results_json_and_text(capsys):
    rows = [{"model": "a", "speedup": 161.234567, "n": 3}, {"model": "b", "speedup": 2.0}]
    print_results(rows, True, tag={"benchmark": "x"})
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"benchmark": "x", **r} for r in rows]
    assert list(json.loads(lines[0]))[0] == "benchmark"
    print_results(rows[:1], width=8)
    assert capsys.readouterr().out == "model    a\nspeedup  161.2\nn        3\n\n"


def test_mean_and_std_is_the_sample_std_and_mean_std_formats_it():
    import pytest

    from mechinterp.reporting import mean_and_std, mean_std

    assert mean_and_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # ddof=1: sqrt(2 / 2)
    assert mean_and_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_and_std([])
    summary = {"rate": 0.0123, "rate_std": 0.004, "drop": -0.02, "alone": 0.5, "none": None}
    assert mean_std(summary, "rate", ".2%") == "1.23% ± 0.40%"
    assert mean_std(summary | {"drop_std": 0.01}, "drop", "+.1%") == "-2.0% ± 1.0%"
    assert mean_std(summary, "alone", ".1f") == "0.5"
    assert mean_std(summary, "none") == "n/a" and mean_std(summary, "absent", missing="-") == "-"
