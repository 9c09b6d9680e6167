"""The lineage benchmark's own code, run tiny on the test database (no timing asserted: that is the benchmark's job)."""

import random

import pytest

from console.evidence import package_verify
from tests.bench.lineage import export, seed
from tests.factories import reference_data_load


@pytest.mark.django_db
def test_the_bench_seeds_and_exports_a_verifiable_package(tmp_path):
    reference_data_load()
    since, until = seed(14, rng=random.Random(1))
    result = export(since, until, str(tmp_path))
    assert result["status"] == "done", result["error"]
    assert result["transactions"] == 14 and result["rows"] >= 14 * 4
    check = package_verify(result["path"])
    assert check.ok, check.problems
    assert check.manifest["findings"] == 2  # transactions 0 and 7: j.doe approved both SoD steps
