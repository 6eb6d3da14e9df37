"""The essay pages' record reader: found, produced by running the tutorial, or a clear error."""

from __future__ import annotations

import pytest

from mechinterp.errors import DataError
from mechinterp.essay import provenance_note, require_result
from mechinterp.results import write_result


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    results, tutorials = tmp_path / "results", tmp_path / "tutorials"
    tutorials.mkdir()
    monkeypatch.setenv("MECHINTERP_RESULTS", str(results))
    monkeypatch.setattr("mechinterp.essay.TUTORIALS", tutorials)
    return results, tutorials


def test_an_existing_record_is_read_without_running_anything(folders):
    write_result("demo", {"score": 0.5}, seeds=[0, 1], data_source="toy world", title="Demo")
    record = require_result("demo", "no_such_tutorial")
    assert record["metrics"] == {"score": 0.5} and record["profile"] == "quick"
    note = provenance_note(record)
    assert note.startswith("*Numbers on this page come from:* Demo (profile `quick`, seeds [0, 1]")


def test_a_missing_record_runs_the_tutorial_that_writes_it(folders):
    _, tutorials = folders
    (tutorials / "writer.py").write_text(
        "import mechinterp as mi\n"
        "mi.write_result('made', {'value': 3}, seeds=[0], data_source='none')\n")
    assert require_result("made", "writer")["metrics"] == {"value": 3}


def test_missing_failing_and_silent_tutorials_are_clear_errors(folders):
    _, tutorials = folders
    with pytest.raises(DataError, match=r"no result record 'x' .* is not here"):
        require_result("x", "absent")
    (tutorials / "broken.py").write_text("raise RuntimeError('the model would not train')\n")
    with pytest.raises(DataError, match="broken.py failed while writing record 'x'"
                                        "(.|\n)*the model would not train"):
        require_result("x", "broken")
    (tutorials / "quiet.py").write_text("print('done')\n")
    with pytest.raises(DataError, match="quiet.py ran but wrote no record 'x'"):
        require_result("x", "quiet")
