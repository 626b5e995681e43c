"""The champion/challenger gate: a pure decision on whether a new model version takes the `champion` alias."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote when target macro-F1 beats the champion's by `margin` and source macro-F1 drops by at most
    `max_source_drop`."""

    margin: float = 0.002
    max_source_drop: float = 0.02


@dataclass(frozen=True)
class Scores:
    """What the gate compares: target-test macro-F1 and, where a source hold-out was scored, source macro-F1."""

    target_macro_f1: float
    source_macro_f1: float | None = None


def decide_promotion(challenger: Scores, champion: Scores | None, policy: PromotionPolicy) -> tuple[bool, str]:
    """(promote, reason). The first model becomes champion; later ones must beat it on the target domain by the
    margin without losing more than the bound on the source domain."""
    if champion is None:
        return True, f"first model: no champion yet (target macro-F1 {challenger.target_macro_f1:.4f})"
    needed = champion.target_macro_f1 + policy.margin
    if challenger.target_macro_f1 < needed:
        return False, (f"target macro-F1 {challenger.target_macro_f1:.4f} does not beat the champion's "
                       f"{champion.target_macro_f1:.4f} by the margin {policy.margin:.4f}")
    if challenger.source_macro_f1 is not None and champion.source_macro_f1 is not None:
        drop = champion.source_macro_f1 - challenger.source_macro_f1
        if drop > policy.max_source_drop:
            return False, (f"source macro-F1 drops by {drop:.4f} ({champion.source_macro_f1:.4f} -> "
                           f"{challenger.source_macro_f1:.4f}), more than the bound {policy.max_source_drop:.4f}")
        source = f"; source macro-F1 {challenger.source_macro_f1:.4f} (drop {drop:+.4f} within {policy.max_source_drop:.4f})"
    else:
        source = "; no source score to compare"
    return True, (f"target macro-F1 {challenger.target_macro_f1:.4f} beats the champion's "
                  f"{champion.target_macro_f1:.4f} by at least {policy.margin:.4f}{source}")
