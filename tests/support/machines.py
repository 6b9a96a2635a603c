"""Running a Hypothesis state machine the way every stateful test here does."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test


def run_machine(machine: type[RuleBasedStateMachine], *, max_examples: int) -> None:
    """Up to `max_examples` runs of 30 steps each, with no deadline: a step waits on a real
    database, whose speed is the machine's load and not the product's."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
