"""Workflow automation (C15): rules as data, run after each commit as system actors."""

from taskflow.automation.due import DueTasks, InMemoryDueTasks, OverdueTasks
from taskflow.automation.rules import (
    SLA_BREACH,
    SLA_WARNING,
    AddTag,
    AddWatcher,
    AssignTo,
    Condition,
    Notify,
    On,
    PostComment,
    RemoveTag,
    Rule,
    RuleAction,
    RuleBook,
    SetField,
    TakeAction,
    Trigger,
)
from taskflow.automation.serialization import dump_rules, load_rules, rule_converter
from taskflow.automation.service import (
    Automation,
    AutomationWarning,
    Firing,
    FiringStep,
    rule_actor,
)

__all__ = [
    "SLA_BREACH",
    "SLA_WARNING",
    "AddTag",
    "AddWatcher",
    "AssignTo",
    "Automation",
    "AutomationWarning",
    "Condition",
    "DueTasks",
    "Firing",
    "FiringStep",
    "InMemoryDueTasks",
    "Notify",
    "On",
    "OverdueTasks",
    "PostComment",
    "RemoveTag",
    "Rule",
    "RuleAction",
    "RuleBook",
    "SetField",
    "TakeAction",
    "Trigger",
    "dump_rules",
    "load_rules",
    "rule_actor",
    "rule_converter",
]
