"""Run pytest and fail when it collected no tests (pytest's exit code 5 must not pass silently)."""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    if code == NO_TESTS_COLLECTED:
        print("run_tests: pytest collected no tests; failing", file=sys.stderr)
        sys.exit(1)
    sys.exit(int(code))
