import json

from mechinterp.cli import main


def test_train_prints_one_json_object(capsys):
    code = main(["train", "--arch", "simplenn", "--digits", "0-3", "--epochs", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("arch", "digits", "test_accuracy", "cached", "checkpoint"):
        assert key in out
    assert out["arch"] == "simplenn" and out["digits"] == [0, 1, 2, 3]
    assert out["test_accuracy"] > 0.8 and out["cached"] is False
    assert main(["train", "--arch", "simplenn", "--digits", "0-3", "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True


def test_bad_inputs_exit_2_with_a_message(capsys):
    assert main(["train", "--arch", "resnet", "--json"]) == 2
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
    assert main(["train", "--arch", "cnn", "--digits", "0-12"]) == 2
    assert "not in this data set" in capsys.readouterr().err
    assert main(["train", "--arch", "cnn", "--source", "nowhere-data"]) == 2
    assert "unknown data source" in capsys.readouterr().err


def test_models_listing(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"cnn", "simplenn", "megann", "widenn", "deepnn", "convnet"} <= set(listing)
    assert listing["megann"]["parameters"] > listing["simplenn"]["parameters"]


def test_benchmark_listing_and_bad_specs_fail_before_any_model_loads(capsys):
    assert main(["benchmark", "--list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    for name in ("toxicity-steer", "bias-ablate", "fact-edit"):
        assert name in listing["interventions"]
    assert "steer" in listing["spec_kinds"]
    for argv, message in [
        (["--intervention", "make-nice"], "unknown intervention 'make-nice'"),
        (["--intervention", "steer:hook=blocks.1.hook_resid_pre,strength=2"], "missing vector"),
        (["--intervention", "teleport:x=1"], "unknown intervention kind 'teleport'"),
        (["--n", "0"], "--n must be at least 1"),
        (["--model", "attn-only-2l"], "attention-only"),
    ]:
        assert main(["benchmark", *argv]) == 2
        assert message in capsys.readouterr().err
