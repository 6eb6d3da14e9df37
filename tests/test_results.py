import json
import math
import time

import pytest
import torch

from mechinterp.errors import ConfigError
from mechinterp.results import load_results, render_results_page, write_result


def test_record_carries_metrics_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_RESULTS", str(tmp_path))
    path = write_result("demo-run", {"acc": torch.tensor(0.5), "bad": math.nan, "nested": [1, 2]},
                        seeds=[0, 1], data_source="mnist-5k", title="Demo",
                        started=time.perf_counter())
    record = json.loads(path.read_text())
    assert path == tmp_path / "quick" / "demo-run.json"
    assert record["metrics"] == {"acc": 0.5, "bad": None, "nested": [1, 2]}
    assert record["seeds"] == [0, 1] and record["profile"] == "quick"
    assert record["versions"]["torch"] == torch.__version__.split("+")[0] or record["versions"]["torch"]
    for key in ("git_commit", "device", "python", "created", "wall_seconds"):
        assert key in record
    assert record["wall_seconds"] >= 0


def test_results_page_is_generated_from_records(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_RESULTS", str(tmp_path))
    write_result("b-run", {"transfer": 0.874}, seeds=[0], data_source="mnist-5k", title="B")
    write_result("a-run", {"accuracy": 0.95}, seeds=[0], data_source="mnist-5k", title="A")
    (tmp_path / "quick" / "broken.json").write_text("{not json")
    records = load_results()
    assert [r["name"] for r in records] == ["a-run", "b-run"]
    page = render_results_page(records)
    assert page.index("## A") < page.index("## B")
    assert "| `transfer` | 0.874 |" in page
    assert "profile `quick`" in page
    assert "No result records" in render_results_page([])


def test_bad_record_name():
    with pytest.raises(ConfigError, match="may use only letters"):
        write_result("a/b", {}, seeds=[0], data_source="x")
