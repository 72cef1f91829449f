"""`bench btu-scheduler ...`: the scheduler daemon's CLI, run from inside the bench.

Passes the bench path, and the sites chosen with `bench --site`, to the daemon's
subcommands that accept `--bench` / `--site`. Neither frappe nor the daemon is imported
until the command runs, so `bench --help` stays fast.
"""

from __future__ import annotations

import os
from typing import Any

import click

PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _given(args: list[str], option: click.Option) -> bool:
	names = list(option.opts) + list(option.secondary_opts)
	return any(arg == name or arg.startswith(name + "=") for arg in args for name in names)


def _options(command: click.Command) -> dict[str, click.Option]:
	return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


def _bench_site_args(command: click.Command, args: list[str], bench_path: str, sites: list[str]) -> list[str]:
	"""``--bench``/``--site`` options for ``command`` unless the user already gave them."""
	options = _options(command)
	extra: list[str] = []
	bench_option = options.get("bench_path") or options.get("bench")
	if bench_option is not None and bench_path and not _given(args, bench_option):
		extra += [bench_option.opts[0], bench_path]
	site_option = options.get("sites") or options.get("site")
	if site_option is not None and sites and not _given(args, site_option):
		chosen = sites if site_option.multiple else sites[:1]
		for site in chosen:
			extra += [site_option.opts[0], site]
	return extra


def daemon_argv(group: click.Group, args: list[str], bench_path: str, sites: list[str]) -> list[str]:
	"""The argument list for the daemon's click group, with the bench's path and sites filled in."""
	args = list(args)
	if not args or args[0].startswith("-"):
		return args  # group options such as --help / --version: pass through untouched
	name, rest = args[0], args[1:]
	with click.Context(group) as ctx:
		command = group.get_command(ctx, name)
	if command is None or "--help" in rest or "-h" in rest:
		return args
	return [name, *_bench_site_args(command, rest, bench_path, sites), *rest]


def chosen_sites(ctx: click.Context) -> list[str]:
	"""The sites the user named with ``bench --site`` (or FRAPPE_SITE), else none: every site.

	Frappe's bench CLI fills ``ctx.obj["sites"]`` with the bench's default site (``bench use``)
	when no --site is given; the daemon must not take that for a choice, or a bench with a
	default site gets a daemon that serves that site alone. ``--site all`` means every site.
	"""
	parent = ctx.parent
	named = parent.params.get("site") if parent is not None else None
	named = named or os.environ.get("FRAPPE_SITE")
	if not named or named == "all":
		return []
	obj: dict[str, Any] = ctx.obj or {}
	return [s for s in (obj.get("sites") or [named]) if s and s != "all"]


@click.command("btu-scheduler", context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def btu_scheduler(ctx: click.Context, args: tuple[str, ...]) -> None:
	"""BTU scheduler daemon: run, ping, status, list, next-runs, enqueue-now, refresh, check-config, init-db.

	Example: bench btu-scheduler run   |   bench --site mysite btu-scheduler status
	"""
	from frappe.utils import get_bench_path

	from btu.scheduler_daemon.cli import main

	argv = daemon_argv(main, list(args), get_bench_path(), chosen_sites(ctx))
	main.main(args=argv, prog_name="bench btu-scheduler")


commands = [btu_scheduler]
