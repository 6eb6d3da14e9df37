# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Limits and open questions
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The numbers below come from the result records of every method tutorial;
# the [results page](../../results/) lists them all with their provenance.*
#
# The argument of this essay is that networks trained against a network make good
# instruments for studying it: they search, they act, and they leave a readable trace. The
# sections showed each instrument doing something a hand-made tool could not. This last
# section collects what they did not show, because an instrument is only as useful as an
# honest account of its range.
#
# First, the scorecard: each instrument's headline number next to the trivial and the strong
# baseline it was measured against, on the same data.

# %% tags=["hide-input"]
from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, show_markdown

records = {
    "symbiote": require_result("symbiote-normal", "symbiosis_normal"),
    "poly": require_result("symbiote-polysemantic", "symbiosis_polysemantic"),
    "map": require_result("symbiote-circuit-map", "symbiote_circuit_map"),
    "report": require_result("selfreport-pipeline", "selfreport_4_unfreezing_and_drift"),
    "heads": require_result("selfreport-heads", "selfreport_3_heads"),
    "transfer": require_result("transfer-leaderboard", "transfer_leaderboard"),
    "discovery": require_result("circuits-siit-benchmark", "circuits_5_discovery_leaderboard"),
    "bench": require_result("interventions-benchmark", "interventions_5_benchmark_suite"),
    "goals": require_result("interventions-goals", "interventions_5_benchmark_suite"),
}
sym, poly, cmap = (records[k]["metrics"] for k in ("symbiote", "poly", "map"))
rep, heads = records["report"]["metrics"], records["heads"]["metrics"]
board, disc, bench = (records[k]["metrics"] for k in ("transfer", "discovery", "bench"))
norm_best = max(disc[k]["edge_auc"] for k in disc if k.endswith("/weight_norm"))
norm_broken = bool(disc["weight_norm_above_0.75"])  # tasks where it scores above 0.75
disc_tasks = sorted({k.split("/")[0] for k in disc if k.count("/") == 1})
best_min = min(max(disc[f"{t}/{m}"]["edge_auc"] or 0 for m in ("eap", "eap-ig", "acdc"))
               for t in disc_tasks)
best_transfer = board["best_method"]
cross_pair = next(k.split("|")[1] for k in board
                  if k.count("|") == 2 and k.split("|")[1].split(" <- ")[0]
                  != k.split("|")[1].split(" <- ")[1])


def tb(method, metric):
    return board[f"{method}|{cross_pair}|{metric}_mean"]


def cost(metrics, prefix):
    """Target rate plus accuracy lost: 0 is a perfect, harmless inhibition."""
    return (metrics[f"{prefix}target_output_rate"]
            + max(0.0, metrics[f"{prefix}nontarget_accuracy_drop"]))


best = rep["best_head"]
cross_best = rep["baselines"][f"cross/{best}"]
fine_tuning = (tb("finetune_with_budget", "transfer"), tb("finetune_with_budget", "specificity"))
rows = [
    {"instrument": "symbiote (wide CNN)", "measure": "target rate + accuracy lost",
     "instrument score": cost(sym, "symbiote."),
     "trivial baseline": f"logit mask: {cost(sym, 'logit_mask.'):.3f}",
     "strong baseline": "gates trained on attribution units: "
                        f"{cost(sym, 'trained_gates_attribution_units.'):.3f}"},
    {"instrument": "symbiote (same CNN, mixed basis)", "measure": "target rate + accuracy lost",
     "instrument score": cost(poly, "mixed."),
     "trivial baseline": f"logit mask: {cost(poly, 'baseline.mixed.logit_mask.'):.3f}",
     "strong baseline": "gates trained on attribution units: "
                        f"{cost(poly, 'baseline.mixed.trained_gates_attribution_units.'):.3f}"},
    {"instrument": "symbiote (same CNN, unselective units)",
     "measure": "target rate + accuracy lost",
     "instrument score": cost(poly, "polysemantic."),
     "trivial baseline": f"logit mask: {cost(poly, 'baseline.polysemantic.logit_mask.'):.3f}",
     "strong baseline": "gates trained on attribution units: "
                        f"{cost(poly, 'baseline.polysemantic.trained_gates_attribution_units.'):.3f}"},
    {"instrument": "symbiote (narrow CNN)", "measure": "target rate + accuracy lost",
     "instrument score": cost(poly, "narrow."),
     "trivial baseline": f"logit mask: {cost(poly, 'baseline.narrow.logit_mask.'):.3f}",
     "strong baseline": "conditional symbiote (reads A): "
                        f"{cost(poly, 'conditional.narrow.'):.3f}"},
    {"instrument": f"self-report ({best} head)", "measure": "Pearson r",
     "instrument score": rep["pearson_r"],
     "trivial baseline": f"token lookup: {rep['baselines']['token_lookup']:.3f}",
     "strong baseline": f"another model: {cross_best:.3f}"},
    {"instrument": f"concept transfer (`{best_transfer}`, {cross_pair})",
     "measure": "transfer (specificity error)",
     "instrument score": tb(best_transfer, "transfer"),
     "trivial baseline": "unedited recipient: 0.000",
     "strong baseline": f"fine-tuning: {fine_tuning[0]:.3f} ({fine_tuning[1]:.3f})"},
    {"instrument": "ACDC (SIIT indirect objects)", "measure": "edge ROC AUC vs built circuit",
     "instrument score": disc["siit-ioi/acdc"]["edge_auc"],
     "trivial baseline": f"random: {disc['siit-ioi/random']['edge_auc']:.3f}; weight norm: "
                         f"{disc['siit-ioi/weight_norm']['edge_auc']:.3f}",
     "strong baseline": f"EAP-IG: {disc['siit-ioi/eap-ig']['edge_auc']:.3f}"},
    {"instrument": "probe-gated steering", "measure": "toxic rate after",
     "instrument score": bench["toxicity-steer"]["after"]["toxicity"],
     "trivial baseline": "random direction: "
                         f"{bench['random direction (trivial)']['after']['toxicity']:.3f}",
     "strong baseline": f"word filter: {bench['filter toxic words']['after']['toxicity']:.3f} "
                        "(held-out loss undefined)"},
]
show_markdown(markdown_table(rows, ["instrument", "measure", "instrument score",
                                    "trivial baseline", "strong baseline"],
                             {"instrument score": ".3f"}))

# %% [markdown]
# ## What the instruments did not show
#
# **Everything here is small.** The CNNs have a few hundred units, the transformers two to four
# layers, and the default build runs on a CPU in minutes. The site's `full` profile uses all
# of MNIST, longer training and more seeds, and the code runs GPT-2 through the same
# TransformerLens bridge; but a built ground truth exists only in the toy world, and a result
# on a two-layer model is a result about two-layer models until shown otherwise.
#
# **The readable symbiote's edit is the same for every image.** The fixed B sees the name of
# the digit, not the image, so what it learns is one gate pattern per output. That is what
# makes the edit foldable into weights and readable as a map, and it is also a restriction:
# on the narrow CNN no single pattern separates one digit from the others that share its
# units. The conditional B, which reads A's first layer, mends that, but it does so
# by recognising the digit itself, with a reader larger than the narrow primary; its gates
# change per image, so they no longer fold into one weight edit.

# %% tags=["hide-input"]
show_markdown(
    f"**The map is a sketch.** Ablating the units B dims for a digit brings the accuracy on "
    f"that digit from {cmap['causal.digit_accuracy_before']:.1%} to "
    f"{cmap['causal.digit_accuracy_ablated']:.1%}, not to zero; B also works through boosts "
    f"and small shadings. Mixing the units of the same network into polysemantic ones barely "
    f"matters to B (other digits lose {poly['mixed.nontarget_accuracy_drop']:.1%}), and "
    f"training them to answer to more digits costs B units, not accuracy (other digits lose "
    f"{poly['polysemantic.nontarget_accuracy_drop']:.1%}; B touches "
    f"{poly['polysemantic.units_touched_fraction']:.0%} of the units against "
    f"{poly['normal.units_touched_fraction']:.0%}), but "
    f"on the narrow network, where digits share too few units, the other digits lose "
    f"{poly['narrow.nontarget_accuracy_drop']:.1%} of their accuracy (wide network: "
    f"{poly['normal.nontarget_accuracy_drop']:.1%}) and B touches "
    f"{poly['narrow.units_touched_fraction']:.0%} of the units: a fixed gate per unit can "
    "measure that entanglement but not undo it.")
mid = heads["read_mid"]
mid_best = max(mid["heads"].values())  # the best self-report of the same record
bins_share = ((mid["frozen_model"]["classification"] - mid["baselines"]["linear probe"])
              / (mid_best - mid["baselines"]["linear probe"]))
token_cost = {h: v["lm_loss"] - v["lm_loss_before"] for h, v in rep["heads"].items()}
costliest = max(token_cost, key=token_cost.get)
show_markdown(
    f"**Self-knowledge was worth little here.** Read just before the neurons' MLP "
    f"(`{rep['read_hook']}`), the self-report "
    + (f"beat a second model trained to predict the same neurons by "
       f"{rep['pearson_r'] - cross_best:.3f} in Pearson r"
       if rep["pearson_r"] > cross_best else
       f"did no better than a second model trained to predict the same neurons "
       f"({rep['pearson_r'] - cross_best:+.3f} in Pearson r)")
    + ", and the same classification head on the frozen model already reached "
    f"{mid['frozen_model']['classification']:.3f} against the linear probe's "
    f"{mid['baselines']['linear probe']:.3f} and the best self-report's {mid_best:.3f}: a "
    f"nonlinear readout explains "
    + ("all" if bins_share >= 1 else f"{bins_share:.0%}")
    + " of the gap to the probe without any introspection, and a small nonlinear probe on the unchanged stream "
    f"reached {mid['baselines']['nonlinear probe']:.4f}, above every self-report, because "
    f"just before the MLP the neurons are a simple function of what that probe reads. The "
    f"`{costliest}` head cost the model the most "
    f"next-token loss (+{token_cost[costliest]:.3f}). Read after the neurons' write, as an "
    f"earlier version of this project did, the linear readouts climb (the probe to "
    f"{heads['read_post_leak']['linear_probe']:.3f}, the regression report to "
    f"{heads['read_post_leak']['heads']['regression']:.3f}): there a linear map can copy what "
    "it should predict.")
show_markdown(
    f"**Transfer was measured on digits.** The best method moved the concept across "
    f"architectures with {tb(best_transfer, 'transfer'):.1%} transfer at "
    f"{tb(best_transfer, 'preservation'):.1%} preservation and a specificity error of "
    f"{tb(best_transfer, 'specificity'):.1%}, but a digit is a concept with a clean boundary "
    "and a few hundred examples; what a concept is inside a language model, and whether it "
    "moves the same way, is open.")
show_markdown(
    (f"**Discovery is scored against built circuits, and on some of them a data-free guess "
     f"still finds them.** On the SIIT-trained models the weight norm reaches an edge AUC of "
     f"{norm_best:.2f} on its best task, where only the circuit's components were trained; "
     + "".join(f"on {t}, whose weights are held at one norm"
               + (" and whose non-circuit components have jobs of their own"
                  if t in disc["busy_tasks"] else "")
               + f", it stays at {disc[f'{t}/weight_norm']['edge_auc']:.2f}; "
               for t in disc.get("held_norm_tasks", disc["busy_tasks"]))
     + "making every task's models pass verification that way is open. The "
     if norm_broken else
     f"**Discovery was scored on circuits built into small models.** On the SIIT-trained "
     f"models the data-free weight norm stays at or below {norm_best:.2f} and the best "
     f"edge method reaches an edge AUC of at least {best_min:.2f} on every task; whether that "
     "ranking holds on circuits "
     "that were learned rather than imposed, with many overlapping tasks and no strictness "
     "term keeping the rest of the model out, is what the GPT-2 comparison with Wang et al. "
     "begins to test. The ")
    + f"interventions that only remove or clamp a direction cut the toxic rate to "
    f"{bench['toxicity-ablate']['after']['toxicity']:.2f} (ablation) and "
    f"{bench['neuron-clamp']['after']['toxicity']:.2f} (neuron clamp) from "
    f"{bench['toxicity-ablate']['before']['toxicity']:.2f}. The likely reason, argued on the "
    "[clamping page](../../tutorials/interventions_2_clamping_and_ablation/), is that removing what distinguishes a hostile context from a calm one "
    "returns the model to its average behaviour rather than pushing it below; only steering "
    "pushes past it, and only the gated version does so cheaply.")
seeds_bench = records["goals"]["metrics"]["seeds"]
if len(seeds_bench) > 1:
    cuts = {s: g["toxic share down"] for s, g in seeds_bench.items()}
    show_markdown(
        f"**One trained toy model is one draw.** The benchmark page repeats the headline "
        f"interventions on {len(cuts)} toy models trained the same way from different seeds. "
        f"The bias ablation and the fact edit hold on every one (the bias gap down by at least "
        f"{min(g['bias gap down'] for g in seeds_bench.values()):.0%}, the edit's efficacy "
        f"never below {min(g['efficacy'] for g in seeds_bench.values()):.0%}), but the gated "
        f"steering's cut of the toxic share on unseen contexts ranges from "
        f"{min(cuts.values()):.0%} to {max(cuts.values()):.0%} ("
        + ", ".join(f"seed {s}: {c:.0%}" for s, c in cuts.items())
        + "): the cheap, confined edit above is a property of some trained models, not of the "
        "method.")

# %% [markdown]
# ## Open questions
#
# * **A symbiote for transformers.** Gating attention heads and MLP neurons to suppress one
#   behaviour (a fact, a bias, a refusal) while preserving the rest is the direct analogue of
#   SymbioteNet, and its gates would be a circuit map that could be scored against the
#   SIIT-built circuits and against activation patching.
# * **Input-conditioned symbiotes.** A symbiote that sees the input would trade the
#   foldable, per-output edit for one that can act on context, and would have to be read
#   differently: its gates become a function, not a table.
# * **Self-report with a question.** The report here is read at every position; the
#   introspection experiments on language models ask a question and read one answer. A
#   question token, and neurons chosen to be hard for an outsider (high context variance, low
#   token selectivity), would test privileged access where the toy world's neurons did not.
# * **Do the instruments agree?** The symbiote's map, the report head's readout and the
#   patching scores are three measurements of one network's circuitry. Where they disagree
#   about the same network is where the next thing is to be learned.
# * **Instruments that change their subject.** The report head moved the neurons it reported
#   on until an anchor stopped it. Any instrument that is trained *with* the network under
#   study, rather than against a frozen copy, inherits that problem, and the drift it causes
#   deserves to be measured as routinely as accuracy.
#
# The code for every section is in the notebook and script downloads of its page, and every
# method has a tutorial of its own: an instrument is most useful in the hands of someone who
# can check it.

# %% tags=["hide-input"]
show_markdown(provenance_note(*records.values()))
score = {row["instrument"]: row["instrument score"] for row in rows}
assert score["symbiote (wide CNN)"] < 0.02 and score[f"self-report ({best} head)"] >= 0.9
assert cmap["causal.digit_accuracy_ablated"] > 0.5
assert poly["polysemantic.units_touched_fraction"] > poly["normal.units_touched_fraction"]  # "costs B units"
assert poly["polysemantic.nontarget_accuracy_drop"] < poly["normal.nontarget_accuracy_drop"] + 0.005
assert rep["pearson_r"] - cross_best < 0.05
# the frozen model's nonlinear readout explains the gap to the probe; the leak inflates it
assert mid["frozen_model"]["classification"] > mid["baselines"]["linear probe"]
assert mid["baselines"]["nonlinear probe"] > max(mid["heads"].values())
assert bins_share > 0.5  # the frozen bins explain most of the self-report's margin
assert heads["read_post_leak"]["linear_probe"] > mid["baselines"]["linear probe"]
assert heads["read_post_leak"]["heads"]["regression"] > mid["heads"]["regression"]
assert not rep["leak"] and heads["read_post_leak"]["leak"]
assert norm_broken == any(max(disc[f"{t}/weight_norm"]["edge_auc"],
                               disc[f"{t}/weight_norm"]["node_auc"]) > 0.75 for t in disc_tasks)
assert bench["toxicity-ablate"]["after"]["toxicity"] > 0.3
assert bench["neuron-clamp"]["after"]["toxicity"] > 0.3
assert tb(best_transfer, "specificity") < tb("finetune_with_budget", "specificity")
