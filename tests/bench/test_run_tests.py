"""`bench run-tests --app btu` on the real site: every FrappeTestCase passes, and the site keeps
exactly the BTU records it had (the runner commits; BTU's tests must clean up after themselves)."""

from __future__ import annotations

import re

from .harness import TRACKED, SiteSnapshot


def run_app_tests(bench, site: str) -> str:
	result = bench.bench("run-tests", "--app", "btu", site=site, timeout=1200, check=False)
	output = result.stdout + result.stderr
	ran = re.search(r"Ran (\d+) tests? in", output)
	assert ran, output[-3000:]
	assert result.returncode == 0 and re.search(r"^OK\b", output, re.M), output[-6000:]
	assert not re.search(r"FAILED \(", output), output[-6000:]
	return ran.group(1)


def test_app_tests_pass_and_leave_no_record(bench, bench_config, api):
	before = SiteSnapshot.take(api)
	count = run_app_tests(bench, bench_config.site)
	assert int(count) >= 45
	assert before.new_since(api) == {doctype: [] for doctype in TRACKED}
	assert SiteSnapshot.take(api).names == before.names  # nothing deleted either
