import json
import math
import time

import pytest
import torch

from mechinterp.errors import ConfigError
from mechinterp.leaderboards import plot_results_figures, render_results_page
from mechinterp.results import load_results, write_result


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
    assert page.index('??? note "A (`a-run`)"') < page.index('??? note "B (`b-run`)"')
    assert "    | `transfer` | 0.874 |" in page  # inside the collapsed block
    assert "profile `quick`" in page
    assert "## SymbioteNet" not in page  # no leaderboard without its record
    assert "No result records" in render_results_page([])
    assert plot_results_figures(records) == {}


def test_results_page_leaderboards_come_from_their_records():
    records = [
        {"name": "circuits-siit-benchmark", "profile": "quick", "seeds": [0, 1, 2],
         "git_commit": "abc", "metrics": {
             "siit-ioi/acdc": {"node_auc": 0.889, "node_auc_std": 0.01, "edge_auc": 0.958,
                               "edge_auc_std": 0.02, "edge_precision": 0.5,
                               "edge_precision_std": 0.1, "edge_recall": 1.0,
                               "edge_recall_std": 0.0, "faithfulness": 1.06,
                               "faithfulness_std": 0.03},
             "siit-ioi/weight_norm": {"node_auc": 0.667, "node_auc_std": 0.1,
                                      "edge_auc": 0.6, "edge_auc_std": 0.05},
             "siit-ioi/seed0/verification": {"iia": 0.99}}},
        {"name": "transfer-leaderboard", "profile": "quick", "seeds": [0, 1], "metrics": {
            "aligned_spatial|widenn <- deepnn|transfer_mean": 0.933,
            "aligned_spatial|widenn <- deepnn|preservation_mean": 0.976,
            "aligned_spatial|widenn <- deepnn|specificity_mean": 0.007,
            "aligned_spatial|widenn <- deepnn|budget0_transfer_mean": 0.61,
            "best_method": "aligned_spatial"}},
        {"name": "symbiote-normal", "profile": "quick", "seeds": [0, 1, 2], "metrics": {
            "symbiote.target_output_rate": 0.0003, "symbiote.nontarget_accuracy_drop": 0.007,
            "symbiote.target_output_rate_std": 0.0002,
            "symbiote.nontarget_accuracy_drop_std": 0.001,
            "best_ablation_at_budget": "selective_mean",
            "best_ablation.target_output_rate": 0.0, "best_ablation.nontarget_accuracy_drop":
            0.417}},
        {"name": "symbiote-polysemantic", "profile": "quick", "seeds": [0], "metrics": {
            "best_ablation_at_budget.polysemantic": "attribution_zero",
            "best_ablation_at_budget.mixed": "selective_mean",
            "baseline.polysemantic.attribution_zero.target_output_rate": 0.0,
            "baseline.polysemantic.attribution_zero.nontarget_accuracy_drop": 0.77,
            "baseline.mixed.selective_mean.nontarget_accuracy_drop": 0.123,
            "conditional.polysemantic.nontarget_accuracy_drop": 0.0118}},
    ]
    page = render_results_page(records, figures={"a caption": "assets/x.png"})
    best_row = next(line for line in page.splitlines()
                    if line.startswith("| best ablation at the symbiote's budget"))
    # each condition's own best ablation (on the normal one, each seed's own choice)
    assert "41.7" in best_row and "77.0" in best_row and "12.3" in best_row
    symbiote_row = next(line for line in page.splitlines() if line.startswith("| **symbiote**"))
    assert "0.03% ± 0.02% / +0.7% ± 0.1%" in symbiote_row
    assert "mean ± std over 3 seeds" in page
    conditional_row = next(line for line in page.splitlines()
                           if line.startswith("| conditional symbiote"))
    assert "+1.2%" in conditional_row
    assert "![a caption](assets/x.png)" in page
    assert ("| siit-ioi | acdc | 0.889 ± 0.010 | 0.958 ± 0.020 | 0.500 ± 0.100 | 1.000 ± 0.000 "
            "| 1.060 ± 0.030 |") in page
    assert "| siit-ioi | weight norm | 0.667 ± 0.100 | 0.600 ± 0.050 | n/a | n/a | n/a |" in page
    assert "verification" not in page.split("??? note")[0]
    assert "surgery 12: `aligned_spatial` (best) | 93.3% / 97.6% / 0.7% (0 images: 61.0%) |" in page
    assert "commit `abc`" in page and "## Neuron self-report" not in page
    png = plot_results_figures(records)["transfer-tradeoff.png"]
    assert png[:4] == b"\x89PNG"


def test_bad_record_name():
    with pytest.raises(ConfigError, match="may use only letters"):
        write_result("a/b", {}, seeds=[0], data_source="x")


def test_key_results_read_the_records_that_exist():
    from mechinterp.dashboard import key_results, plot_key_results, render_key_results

    assert render_key_results([]).startswith("*No result records")
    assert plot_key_results([]) is None
    records = [
        {"name": "symbiote-normal", "metrics": {
            "symbiote.target_output_rate": 0.001, "symbiote.target_output_rate_before": 0.1,
            "symbiote.nontarget_accuracy_drop": 0.01}},
        {"name": "circuits-siit-benchmark", "metrics": {
            "siit-induction/eap": {"node_auc": 0.9, "edge_auc": 0.93},
            "siit-induction/random": {"node_auc": 0.5, "edge_auc": 0.5},
            "siit-ioi/acdc": {"node_auc": 0.8, "edge_auc": 0.95},
            "siit-ioi/eap": {"node_auc": 0.8, "edge_auc": 0.91},
            "siit-ioi/weight_norm": {"node_auc": 0.6, "edge_auc": 0.55},
            "siit-ioi/seed0/verification": {"iia": 0.99}}},
        {"name": "interventions-benchmark", "metrics": {
            "toxicity-steer": {"before": {"toxicity": 0.9, "loss": 1.0},
                               "after": {"toxicity": 0.05, "loss": 1.02}}}},
    ]
    rows = key_results(records)
    assert [r["system"] for r in rows] == ["SymbioteNet", "Circuits", "Circuits",
                                           "Interventions"]
    assert "0.10%" in rows[0]["numbers"]
    assert rows[1]["numbers"].startswith("edge ROC AUC: best `eap` 0.93; baselines random 0.50")
    assert "best `acdc` 0.95" in rows[2]["numbers"] and "weight norm 0.55" in rows[2]["numbers"]
    text = render_key_results(records, image="k.png")
    assert text.count("](tutorials/") == 4 and "![Key results of this build](k.png)" in text
    two_panels = plot_key_results([r for r in records if r["name"] != "symbiote-normal"])
    assert two_panels[:4] == b"\x89PNG"
    records.append({"name": "selfreport-pipeline", "metrics": {
        "pearson_r": 0.99, "best_head": "regression", "read_hook": "blocks.1.hook_resid_mid",
        "neuron_hook": "blocks.1.mlp.hook_post", "leak": False,
        "heads": {"regression": {"pearson_r": 0.99, "drift": 0.01, "lm_loss": 2.2,
                                 "lm_loss_before": 2.0}, "token": {"pearson_r": 0.9}},
        "baselines": {"linear_probe": 0.97, "cross/regression": 0.98, "token_lookup": 0.7,
                      "mean": 0.0}}})
    row = key_results(records)[-2]
    assert row["system"] == "Neuron self-report"
    assert row["numbers"] == ("Pearson r 0.990 on held-out text; linear probe 0.970, another "
                              "model 0.980, token lookup 0.700; drift 0.010, next-token loss "
                              "2.000 -> 2.200")
    assert "reading `blocks.1.hook_resid_mid`, before the neurons" in row["result"]
    records[-1]["metrics"]["over_seeds"] = {"seeds": [0, 1, 2], "by_method": {
        "self-report": {"mean": 0.98, "std": 0.001}, "linear probe": {"mean": 0.94, "std": 0.002},
        "nonlinear probe": {"mean": 0.9999, "std": 0.0}}}
    assert key_results(records)[-2]["numbers"] == (
        "Pearson r 0.980 ± 0.001 on held-out text (mean ± std, 3 seeds); linear probe 0.940 ± "
        "0.002, nonlinear probe 1.000 ± 0.000; drift 0.010, next-token loss 2.000 -> 2.200")
    from mechinterp.leaderboards import render_results_page

    assert "| nonlinear probe | 0.9999 ± 0.0000 |" in render_results_page(records)
    records[-1]["metrics"] |= {"read_hook": "blocks.1.hook_resid_post", "leak": True}
    assert "leaking" in key_results(records)[-2]["result"]
    page = render_results_page(records)
    assert "read `blocks.1.hook_resid_post` (after the neurons wrote: leaking)" in page
    def height(png):  # from the PNG header
        return int.from_bytes(png[20:24], "big")

    assert height(plot_key_results(records)) > 1.8 * height(two_panels)  # a second row of two


def test_key_results_show_the_interventions_goals_over_seeds():
    from mechinterp.dashboard import key_results

    metrics = {"toxicity-steer": {"before": {"toxicity": 0.9, "loss": 1.0},
                                  "after": {"toxicity": 0.05, "loss": 1.02}}}
    one = key_results([{"name": "interventions-benchmark", "metrics": metrics}])[0]["numbers"]
    assert one == "0.900 -> 0.050; held-out loss 1.000 -> 1.020"
    seeds = {"0": {"toxic share down": 0.94}, "1": {"toxic share down": 0.90},
             "2": {"toxic share down": 0.86}}
    goals = {"name": "interventions-goals", "metrics": {"seeds": seeds, "targets": {
        "toxic share down": {"target": 0.95, "at_most": False},
        "steering loss rise": {"target": 0.05, "at_most": True}}}}
    bench = {"name": "interventions-benchmark", "metrics": metrics}
    three = key_results([bench, goals])[0]["numbers"]
    assert three == one + " (seed 0; toxic share down over 3 trained models 90.0% ± 4.0%)"
    for seed, g in seeds.items():
        g["steering loss rise"] = 0.01 * int(seed)
    metrics["toxicity-steer"] |= {"kind": "steering"}
    for side in ("before", "after"):
        metrics["toxicity-steer"][side] |= {"bias_gap": 0.1, "factual_recall": 0.5}
    page = render_results_page([bench, goals])
    assert "| toxic share down >= 95% | 94.0% | 90.0% | 86.0% | 90.0% ± 4.0% | no |" in page
    assert "| steering loss rise <= 5% | +0.0% | +1.0% | +2.0% | +1.0% ± 1.0% | yes |" in page
    assert render_results_page([bench]).count("trained from different seeds") == 0


def test_key_results_show_the_spread_over_seeds():
    from mechinterp.dashboard import key_results

    metrics = {"symbiote.target_output_rate": 0.001, "symbiote.target_output_rate_before": 0.1,
               "symbiote.nontarget_accuracy_drop": 0.01,
               "symbiote.target_output_rate_std": 0.0005,
               "symbiote.nontarget_accuracy_drop_std": 0.002}
    numbers = key_results([{"name": "symbiote-normal", "metrics": metrics}])[0]["numbers"]
    assert "0.10% ± 0.05%" in numbers and "1.0% ± 0.2%" in numbers
    assert numbers.endswith("(mean ± std over seeds)")
