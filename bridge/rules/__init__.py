"""Rules: pure functions from alerts to status page impacts, loaded from YAML (see README.md here).

One module per concern: ``schema`` (what a rule file may say), ``load`` (validation and name
resolution), ``evaluate`` (alerts to impacts and texts, no I/O), ``reload`` (the rules in force).
"""

from bridge.rules.evaluate import Evaluation, GroupSpec, Rule, RuleSet
from bridge.rules.load import RuleProblem, RulesError, check_rules, load_rules
from bridge.rules.reload import NO_RULES, NoRules, RulesHolder

__all__ = [
    "NO_RULES",
    "Evaluation",
    "GroupSpec",
    "NoRules",
    "Rule",
    "RuleProblem",
    "RuleSet",
    "RulesError",
    "RulesHolder",
    "check_rules",
    "load_rules",
]
