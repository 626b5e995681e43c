"""Measure how far the target domain is from the source and pick the branch, with the reason recorded."""

from __future__ import annotations

from flows.domain_shift import measure_pair, plot_target
from flows.layout import layout_of, read_role, target_pool
from tasks.atomic import write_json
from tasks.branching import Decision, decide_branch
from tasks.config import AdaptflowConfig
from tasks.results import ValidationSummary


def similarity(config: AdaptflowConfig, validation: ValidationSummary) -> Decision:
    """Measure the domain shift on the validated roles, pick the branch (the measures decide when
    `strategy.branch` is auto), record why, plot the domains."""
    layout = layout_of(config)
    source = read_role(layout, "source_train")
    if source.empty:  # data.source is null: no shift to measure; the plot shows the target domain alone
        plot_target(config, target_pool(layout), layout.domains_plot)
        decision = decide_branch(config.strategy.branch, None, config.similarity, has_source=False)
    else:
        measures = measure_pair(config, source, target_pool(layout), layout.domains_plot)
        decision = decide_branch(config.strategy.branch, measures, config.similarity)
    write_json(layout.similarity, decision.to_dict())
    return decision
