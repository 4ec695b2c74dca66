"""Hypothesis profiles: derandomized for CI, a deep one for local runs (TASKFLOW_PROFILE=deep)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
default = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("TASKFLOW_PROFILE", default))
