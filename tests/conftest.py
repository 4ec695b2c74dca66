"""Hypothesis profiles (derandomized for CI, deep for local runs) and the PostgreSQL server fixtures."""

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from taskflow.errors import TaskflowError

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


# --- PostgreSQL: one real server per session ---------------------------------------------------
#
# TASKFLOW_TEST_PG names a server (a libpq connection string); without it a throwaway cluster is
# started (taskflow.testing.postgres), and when none can be, the PostgreSQL tests FAIL saying
# why. TASKFLOW_SKIP_PG=1 skips them instead: an explicit opt-out that CI never sets.


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    given = os.environ.get("TASKFLOW_TEST_PG")
    if given:
        yield given
        return
    if os.environ.get("TASKFLOW_SKIP_PG") == "1":
        pytest.skip("TASKFLOW_SKIP_PG=1: the PostgreSQL tests are skipped on request")
    how = "set TASKFLOW_TEST_PG to a server's connection string, or TASKFLOW_SKIP_PG=1 to skip"
    try:
        from taskflow.testing.postgres import throwaway_server

        server = throwaway_server()
        dsn = server.__enter__()
    except (ImportError, TaskflowError) as exc:
        pytest.fail(f"the PostgreSQL tests need a server and none could be started: {exc}; {how}")
    try:
        yield dsn
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_pool(pg_dsn: str):
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(pg_dsn, min_size=1, max_size=12, kwargs={"autocommit": True}, open=False)
    pool.open(wait=True, timeout=30)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def pg_schema(pg_pool, request) -> Iterator[str]:
    """A schema of its own for the tests of one module, dropped afterwards."""
    name = f"t_{request.module.__name__.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"[:63]
    yield name
    with pg_pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def pg_reset(pg_pool, pg_schema):
    """Return a function that empties the module's schema (every table)."""
    from taskflow.adapters.postgres import _TABLES

    # DELETE, not TRUNCATE: on a table of a few rows it is ten times faster (no new files).
    deletes = "; ".join(f'DELETE FROM "{pg_schema}".{table}' for table in _TABLES)

    def reset() -> None:
        with pg_pool.connection() as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'tasks'",
                (pg_schema,),
            ).fetchone()
            if found is not None:
                conn.execute(deletes)

    return reset
