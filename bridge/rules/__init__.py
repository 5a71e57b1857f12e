"""Rules: pure functions from alerts to status page impacts, loaded from YAML (see README.md here)."""

from bridge.rules.engine import (
    Evaluation,
    GroupSpec,
    Rule,
    RuleProblem,
    RulesError,
    RuleSet,
    RulesHolder,
    check_rules,
    load_rules,
)

__all__ = [
    "Evaluation",
    "GroupSpec",
    "Rule",
    "RuleProblem",
    "RuleSet",
    "RulesError",
    "RulesHolder",
    "check_rules",
    "load_rules",
]
