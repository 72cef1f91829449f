"""The README says what is true: its CI figures block reads as scripts/update_readme_counts.py
writes it (never compared with a run: the counts grow with every test added), the croniter it names
is the lowest the requirements admit, the function signature and the ignored configuration keys
it quotes are the code's, and every exit code of the command line is in its table."""

from __future__ import annotations

import importlib.util
import inspect
import re

import pytest

from btu.contracts.schedule_rules import next_fire_times
from btu.scheduler_daemon import cli_errors, config

from .services import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
SUMMARY = """started: 2026-12-06T23:40:05Z
suite: 660 passed, 35 skipped in 850.12s (0:14:10)
compatibility: 42 passed in 95.31s (0:01:35)
croniter-low: 300 passed in 20.52s
croniter-low-version: 1.3.8
croniter-high: 300 passed in 21.02s
croniter-high-version: 7.0.0
total-seconds: 1502
"""
BLOCK = re.compile(
	r"^Latest run \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, `bash \.ci/run`, [\w ]+ in all\): "
	r"the suite \*\*\d+ passed(?:, \d+ \w+)*\*\* in [\w ]+; "
	r"the compatibility run \*\*\d+ passed(?:, \d+ \w+)*\*\* in [\w ]+; "
	r"the cron tests on croniter (?P<low>[\d.]+) \*\*\d+ passed(?:, \d+ \w+)*\*\* in [\w ]+ "
	r"and on croniter (?P<high>[\d.]+) \*\*\d+ passed(?:, \d+ \w+)*\*\* in [\w ]+\.$"
)


def _script():
	spec = importlib.util.spec_from_file_location(
		"update_readme_counts", REPO / "scripts" / "update_readme_counts.py"
	)
	module = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(module)
	return module


def _block(text: str, script) -> str:
	return text.split(script.BEGIN, 1)[1].split(script.END, 1)[0].strip()


def test_the_readme_ci_figures_block_reads_as_the_script_writes_it():
	script = _script()
	match = BLOCK.match(_block(README, script))
	assert match, _block(README, script)
	lowest = re.search(r'"croniter>=([\d.]+),', (REPO / "pyproject.toml").read_text()).group(1)
	assert match["low"] == lowest, "the README's low-end croniter run is not the lowest admitted"


def test_the_script_rewrites_only_the_block_from_a_ci_summary(tmp_path):
	script = _script()
	summary, readme = tmp_path / "last-summary.txt", tmp_path / "README.md"
	summary.write_text(SUMMARY)
	readme.write_text(README)
	assert script.main(["--summary", str(summary), "--readme", str(readme)]) == 0
	updated = readme.read_text()
	block = _block(updated, script)
	assert block == (
		"Latest run (2026-12-06 23:40:05 UTC, `bash .ci/run`, 25 min 2 s in all): the suite "
		"**660 passed, 35 skipped** in 14 min 10 s; the compatibility run **42 passed** in 1 min 35 s; "
		"the cron tests on croniter 1.3.8 **300 passed** in 21 s and on croniter 7.0.0 **300 passed** in 21 s."
	)
	assert BLOCK.match(block)
	assert updated.split(script.BEGIN)[0] == README.split(script.BEGIN)[0]
	assert updated.split(script.END)[1] == README.split(script.END)[1]


@pytest.mark.parametrize(
	"broken,reason",
	[
		(SUMMARY.replace("compatibility: 42 passed in 95.31s (0:01:35)\n", ""), "no line for compatibility"),
		(SUMMARY.replace("suite: 660 passed", "suite: "), "is not a pytest closing line"),
	],
)
def test_the_script_refuses_a_summary_without_every_run(tmp_path, capsys, broken, reason):
	script = _script()
	summary, readme = tmp_path / "last-summary.txt", tmp_path / "README.md"
	summary.write_text(broken)
	readme.write_text(README)
	assert script.main(["--summary", str(summary), "--readme", str(readme)]) == 1
	assert reason in capsys.readouterr().err
	assert readme.read_text() == README


def test_the_readme_quotes_next_fire_times_with_its_own_parameters():
	quoted = re.search(r"`btu\.contracts\.schedule_rules\.next_fire_times\(([^)]*)\)`", README).group(1)
	assert [p.strip() for p in quoted.split(",")] == list(inspect.signature(next_fire_times).parameters)


def test_the_readme_names_exactly_the_ignored_original_email_keys():
	operations = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
	for key in sorted(config.IGNORED_ORIGINAL_KEYS):
		assert f"`{key}`" in operations, key
		if key.startswith("email_"):
			assert f"`{key}`" in README, key
	assert "`email_*`" not in README and "`email_*`" not in operations
	assert "email_port" not in config.IGNORED_ORIGINAL_KEYS and "`email_port`" in README


def test_every_exit_code_of_the_command_line_is_in_the_readme_table():
	codes = {value for name, value in vars(cli_errors).items() if name.startswith("EXIT_")}
	section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
	table = set(int(code) for code in re.findall(r"^\| (\d) \| ", section, re.M))
	assert table == codes
