"""A schedule's spec as Redis stores it: Redis compares the text to tell a changed spec (an unchanged
one keeps its prepared run and logs nothing), so the text must not change between daemon versions."""

from __future__ import annotations

import dataclasses
import json

from btu.scheduler_daemon.specs import ScheduleSpec


def spec(**changes) -> ScheduleSpec:
	values = dict(
		site="a.localhost",
		name="TS-1",
		task="BTU-1",
		cron="*/5 * * * *",
		timezone="Europe/Paris",
		queue="default",
		function_string="app.module.run",
		kwargs={"b": [1, {"x": None}], "a": "é"},
		timeout=600,
		description="nightly",
	)
	values.update(changes)
	return ScheduleSpec(**values)


def test_the_text_is_the_one_every_earlier_daemon_wrote():
	for s in (spec(), spec(run_at=1796204820, overlap="Skip"), spec(kwargs={})):
		text = s.to_json()
		assert text == json.dumps(dataclasses.asdict(s), sort_keys=True, separators=(",", ":"))
		assert ScheduleSpec.from_json(text) == s


def test_a_spec_written_by_a_newer_daemon_keeps_the_fields_this_one_knows():
	data = json.loads(spec().to_json())
	data["a_field_from_the_future"] = 1
	assert ScheduleSpec.from_json(json.dumps(data)) == spec()
