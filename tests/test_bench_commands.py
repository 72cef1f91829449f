"""`bench btu-scheduler ...`: what Frappe's CLI hands to the daemon's CLI (bench path, chosen sites).
Runs without frappe."""

from __future__ import annotations


def test_bench_command_passes_bench_and_sites_to_the_daemon_cli():
	from btu.commands import daemon_argv
	from btu.scheduler_daemon.cli import main

	assert daemon_argv(main, ["run"], "/b", ["one", "two"]) == [
		"run",
		"--bench",
		"/b",
		"--site",
		"one",
		"--site",
		"two",
	]
	assert daemon_argv(main, ["run", "--site", "x"], "/b", ["one"]) == ["run", "--bench", "/b", "--site", "x"]
	assert daemon_argv(main, ["run", "--bench=/other"], "/b", []) == ["run", "--bench=/other"]
	assert daemon_argv(main, ["--help"], "/b", ["one"]) == ["--help"]
	assert daemon_argv(main, ["run", "--help"], "/b", ["one"]) == ["run", "--help"]
	# A subcommand without --bench/--site gets nothing added.
	assert daemon_argv(main, ["init-db", "--db-name", "x"], "/b", ["one"]) == ["init-db", "--db-name", "x"]
	# next-runs --schedule reads the chosen site's database.
	assert daemon_argv(main, ["next-runs", "--schedule", "TS-1"], "/b", ["one"]) == [
		"next-runs",
		"--bench",
		"/b",
		"--site",
		"one",
		"--schedule",
		"TS-1",
	]


def test_bench_default_site_is_not_taken_for_a_choice_of_sites(monkeypatch):
	"""`bench use site1` makes Frappe's CLI put site1 in ctx.obj even without --site: the daemon must
	then serve every site, not site1 alone. `bench --site x` (or FRAPPE_SITE) does choose."""
	import click

	from btu.commands import btu_scheduler, chosen_sites

	monkeypatch.delenv("FRAPPE_SITE", raising=False)
	frappe_group = click.Group("frappe", params=[click.Option(["--site"])])

	def context(site_option, sites):
		parent = click.Context(frappe_group, obj={"sites": sites})
		parent.params = {"site": site_option}
		return click.Context(btu_scheduler, parent=parent, obj=parent.obj)

	assert chosen_sites(context(None, ["site1.localhost"])) == []
	assert chosen_sites(context("all", ["site1.localhost", "site2.localhost"])) == []
	assert chosen_sites(context("site2.localhost", ["site2.localhost"])) == ["site2.localhost"]
	monkeypatch.setenv("FRAPPE_SITE", "site2.localhost")
	assert chosen_sites(context(None, ["site2.localhost"])) == ["site2.localhost"]
