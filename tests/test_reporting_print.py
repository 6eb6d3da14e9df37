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
