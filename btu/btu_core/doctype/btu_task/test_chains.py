"""Chains (BTU Task: Then Run; btu.btu_core.chains) on a real site: loops refused on save with the loop
named, and what the runner does when a run ends: one one-shot of the next task per matching row, made in
the transaction of the run's final Task Log, planned by a real test daemon, run as a worker would run it
(run_scheduled_task), its log linked to the first (chained_from) and A's result in its argument and in
btu.api.chain_input()."""

from __future__ import annotations

import json

import frappe

import btu.api
from btu import runnable
from btu.btu_core import chains
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.task_runner import (
	COMPONENT_WORKER,
	FAILED,
	SKIPPED,
	SUCCESS,
	TIMEOUT,
	_RunRecord,
	execute_task,
	run_scheduled_task,
	run_task_on_server,
)
from btu.btu_core.testing import DaemonTestCase, wait_for

HERE = "btu.btu_core.doctype.btu_task.test_chains"


@runnable
def sample_producer(count: int = 3) -> dict:
	print(f"producing {count}")
	return {"rows": count, "note": "<b>not markup</b>"}


@runnable
def sample_consumer(upstream=None, label: str = "consumer") -> dict:
	"""Returns what it was given and what btu.api.chain_input() says."""
	print(f"{label} got {upstream!r}")
	return {"upstream": upstream, "chain_input": btu.api.chain_input()}


def chained_one_shots(log_name: str, task: str | None = None) -> list:
	filters = {"chained_from": log_name}
	if task:
		filters["task"] = task
	return frappe.get_all(
		"BTU Task Schedule",
		filters=filters,
		fields=["name", "task", "argument_overrides", "run_frequency", "enabled", "chained_from"],
		order_by="creation asc",
	)


def fire_ts(run_id: str) -> int:
	return frappe.get_doc("BTU Task Schedule", run_id).run_at_timestamp()


def then_run(task, *rows: dict):
	"""Add Then Run rows to a submitted task and save it (allowed on submit)."""
	task.reload()
	for row in rows:
		task.append("then_run", row)
	task.save()
	frappe.db.commit()  # kept when a later save in the test is refused and rolled back
	return task


class TestChainValidation(DaemonTestCase):
	def setUp(self):
		super().setUp()
		self.a = make_task(f"{HERE}.sample_producer")
		self.b = make_task(f"{HERE}.sample_consumer")
		self.c = make_task(f"{HERE}.sample_consumer")
		frappe.db.commit()  # kept when a save in the test is refused and rolled back

	def assert_refused(self, task, rows, fragment):
		with self.assertRaises(frappe.ValidationError) as ctx:
			then_run(task, *rows)
		self.assertIn(fragment, str(ctx.exception))
		frappe.db.rollback()

	def test_a_direct_loop_is_refused_with_the_loop_named(self):
		then_run(self.a, {"next_task": self.b.name})
		self.assert_refused(
			self.b,
			[{"next_task": self.a.name}],
			f"Then Run would make a loop: {self.b.name} → {self.a.name} → {self.b.name}.",
		)
		self.assertEqual(frappe.get_doc("BTU Task", self.b.name).then_run, [])

	def test_a_loop_of_three_is_refused_with_the_loop_named(self):
		then_run(self.a, {"next_task": self.b.name})
		then_run(self.b, {"next_task": self.c.name, "run_on": "Failure"})
		loop = f"{self.c.name} → {self.a.name} → {self.b.name} → {self.c.name}"
		self.assert_refused(self.c, [{"next_task": self.a.name, "run_on": "Always"}], loop)
		# Not a loop: a task two rows lead to (a diamond).
		d = make_task(f"{HERE}.sample_consumer")
		then_run(self.a, {"next_task": d.name})
		then_run(self.c, {"next_task": d.name})

	def test_a_task_running_itself_is_refused(self):
		self.assert_refused(
			self.a, [{"next_task": self.a.name}], f"task {self.a.name} cannot run itself after its own run"
		)

	def test_rows_are_checked(self):
		draft = make_task(f"{HERE}.sample_consumer", submit=False)
		self.assert_refused(
			self.a, [{"next_task": draft.name}], f"task {draft.name} is a draft; only submitted"
		)
		self.assert_refused(
			self.a,
			[{"next_task": self.b.name, "result_argument": "1st"}],
			"Result Argument '1st' is not a keyword argument name",
		)
		self.assert_refused(
			self.a,
			[{"next_task": self.c.name, "result_argument": "nowhere"}],
			f"task {self.c.name} cannot take the result as nowhere: Arguments do not fit",
		)
		self.assert_refused(
			self.a,
			[{"next_task": self.b.name}, {"next_task": self.b.name, "run_on": "Always"}],
			f"Then Run rows 1 and 2 both run task {self.b.name} after the same outcome",
		)
		self.assert_refused(
			self.a, [{"next_task": self.b.name, "delay_seconds": 10**9}], "Delay must be from 0"
		)
		# Success and Failure rows may name the same task: one of them follows each run.
		then_run(
			self.a,
			{"next_task": self.b.name, "run_on": "Success", "result_argument": "upstream"},
			{"next_task": self.b.name, "run_on": "Failure"},
		)
		self.assertEqual(len(frappe.get_doc("BTU Task", self.a.name).then_run), 2)

	def test_the_next_task_search_offers_submitted_tasks_with_their_descriptions_as_text(self):
		from btu.btu_api.chains import next_task_query

		hostile = make_task(f"{HERE}.sample_consumer", desc_short="<img src=x onerror=alert(1)> next")
		draft = make_task(f"{HERE}.sample_consumer", submit=False)
		rows = next_task_query("BTU Task", "", "name", 0, 50, {"exclude": self.a.name})
		names = [row[0] for row in rows]
		self.assertIn(hostile.name, names)
		self.assertNotIn(self.a.name, names)
		self.assertNotIn(draft.name, names)
		title = next(row[1] for row in rows if row[0] == hostile.name)
		self.assertEqual(title, "&lt;img src=x onerror=alert(1)&gt; next")

	def test_a_task_another_task_chains_to_cannot_be_cancelled(self):
		then_run(self.a, {"next_task": self.b.name})
		with self.assertRaises(frappe.LinkExistsError):
			frappe.get_doc("BTU Task", self.b.name).cancel()
		frappe.db.rollback()


class TestChainedRuns(DaemonTestCase):
	def setUp(self):
		super().setUp()
		self.in_progress_setting = frappe.db.get_single_value("BTU Configuration", "create_in_progress_logs")
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 0)
		frappe.db.commit()

	def tearDown(self):
		super().tearDown()
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", self.in_progress_setting)
		frappe.db.commit()

	def run_one_shot(self, task: str, run_id: str) -> dict:
		frappe.db.commit()
		return run_scheduled_task(task, run_id, fire_ts(run_id))

	def test_b_runs_once_after_a_succeeds_with_the_result_in_its_argument_and_chain_input(self):
		a = make_task(f"{HERE}.sample_producer", arguments='{"count": 7}')
		b = make_task(f"{HERE}.sample_consumer", arguments='{"label": "b"}')
		then_run(a, {"next_task": b.name, "run_on": "Success", "result_argument": "upstream"})
		self.assertIsNone(btu.api.chain_input())  # not inside a chained run
		first = self.run_one_shot(a.name, btu.api.run_now(a.name))
		self.assertEqual(first["status"], SUCCESS, first)
		shots = chained_one_shots(first["log"])
		self.assertEqual(len(shots), 1, shots)
		shot = shots[0]
		self.assertEqual((shot.task, shot.run_frequency, shot.enabled), (b.name, "Once", 1))
		expected = {"rows": 7, "note": "<b>not markup</b>"}
		self.assertEqual(json.loads(shot.argument_overrides), {"upstream": expected})
		# The daemon heard of it after the commit and planned it (or already enqueued it: it is due now).
		wait_for(lambda: self.daemon.planned_or_enqueued(shot.name), 15, "the daemon to plan the chained run")

		second = self.run_one_shot(b.name, shot.name)
		self.assertEqual(second["status"], SUCCESS, second)
		log = frappe.get_doc("BTU Task Log", second["log"])
		self.assertEqual((log.chained_from, log.schedule, log.task), (first["log"], shot.name, b.name))
		result = json.loads(log.result_message)
		self.assertEqual(result["upstream"], expected)
		self.assertEqual(
			result["chain_input"],
			{"log": first["log"], "task": a.name, "status": SUCCESS, "result": expected},
		)
		self.assertIn("b got {'note': '<b>not markup</b>', 'rows': 7}", log.stdout)
		# Exactly once: a second copy of B's job is skipped; B's own run started nothing (no rows).
		self.assertEqual(self.run_one_shot(b.name, shot.name)["status"], SKIPPED)
		self.assertEqual(frappe.db.count("BTU Task Log", {"chained_from": first["log"]}), 1)
		self.assertEqual(
			chains.chained_runs(first["log"]), [{"log": log.name, "task": b.name, "status": SUCCESS}]
		)
		self.assertIsNone(btu.api.chain_input())  # reset after the run

	def test_a_second_finish_of_the_same_log_starts_nothing_more(self):
		a = make_task(f"{HERE}.sample_producer")
		b = make_task(f"{HERE}.sample_consumer")
		then_run(a, {"next_task": b.name, "result_argument": "upstream"})
		first = execute_task(a.name, component=COMPONENT_WORKER)
		self.assertEqual(len(chained_one_shots(first.log)), 1)
		# The log finished again (as the dead work horse sweep does with a log it finds): the guard sees
		# the one-shot the first finish made in the same log's transaction.
		record = _RunRecord(frappe.get_doc("BTU Task", a.name), None, COMPONENT_WORKER, None, None)
		record.log = frappe.get_doc("BTU Task Log", first.log)
		again = record.finish(SUCCESS, 0.1, "", first.result_message)
		self.assertEqual(again.log, first.log)
		self.assertEqual(len(chained_one_shots(first.log)), 1)
		# ... and once B ran, its log is the guard.
		shot = chained_one_shots(first.log)[0]
		self.run_one_shot(b.name, shot.name)
		frappe.db.delete("BTU Task Schedule", {"name": shot.name})  # its one-shot gone, its log stays
		frappe.db.commit()
		record.finish(SUCCESS, 0.1, "", first.result_message)
		self.assertEqual(chained_one_shots(first.log), [])
		self.assertEqual(frappe.db.count("BTU Task Log", {"chained_from": first.log}), 1)

	def test_failure_and_always_rules_and_the_last_attempt(self):
		a = make_task("sample_failure", max_retries=1, retry_delay_seconds=600)
		on_success, on_failure, always = (make_task(f"{HERE}.sample_consumer") for _ in range(3))
		then_run(
			a,
			{"next_task": on_success.name, "run_on": "Success"},
			{"next_task": on_failure.name, "run_on": "Failure", "result_argument": "upstream"},
			{"next_task": always.name, "run_on": "Always", "delay_seconds": 120},
		)
		first = execute_task(a.name, component=COMPONENT_WORKER)
		self.assertEqual(first.status, FAILED)
		self.assertEqual(chained_one_shots(first.log), [])  # it will be retried: not its last word
		retry = frappe.get_all("BTU Task Schedule", filters={"retry_of": first.log}, pluck="name")
		self.assertEqual(len(retry), 1, retry)
		last = self.run_one_shot(a.name, retry[0])
		self.assertEqual(last["status"], FAILED)
		shots = {row.task: row for row in chained_one_shots(last["log"])}
		self.assertEqual(set(shots), {on_failure.name, always.name})
		upstream = json.loads(shots[on_failure.name].argument_overrides)["upstream"]
		self.assertIn("ValueError: sample failure", upstream)  # a traceback is text, not JSON
		delayed = frappe.get_doc("BTU Task Schedule", shots[always.name].name)
		self.assertGreater(delayed.run_at_timestamp(), fire_ts(shots[on_failure.name].name) + 60)

	def test_a_timeout_is_a_failure_and_a_web_run_is_a_run(self):
		slow = make_task("sample_timeout")
		ok = make_task(f"{HERE}.sample_producer")
		b = make_task(f"{HERE}.sample_consumer")
		then_run(slow, {"next_task": b.name, "run_on": "Failure"})
		then_run(ok, {"next_task": b.name, "run_on": "Always"})
		timed_out = execute_task(slow.name, component=COMPONENT_WORKER)
		self.assertEqual(timed_out.status, TIMEOUT)
		self.assertEqual([row.task for row in chained_one_shots(timed_out.log)], [b.name])
		web = run_task_on_server(ok.name)  # "Run now on this server": a real run of the task
		self.assertEqual(web["status"], SUCCESS)
		self.assertEqual([row.task for row in chained_one_shots(web["log"])], [b.name])

	def test_a_transient_task_keeps_the_log_a_chained_run_links_to(self):
		a = make_task(f"{HERE}.sample_producer", is_transient=1)
		b = make_task(f"{HERE}.sample_consumer")
		plain = execute_task(a.name, component=COMPONENT_WORKER)
		self.assertIsNone(plain.log)  # no Then Run: a success leaves no log
		then_run(a, {"next_task": b.name})
		chained = execute_task(a.name, component=COMPONENT_WORKER)
		self.assertTrue(chained.log)
		self.assertEqual([row.task for row in chained_one_shots(chained.log)], [b.name])

	def test_skipped_runs_and_drafts_start_nothing(self):
		a = make_task(f"{HERE}.sample_producer")
		b = make_task(f"{HERE}.sample_consumer")
		then_run(a, {"next_task": b.name, "run_on": "Always"})
		record = _RunRecord(frappe.get_doc("BTU Task", a.name), None, COMPONENT_WORKER, None, None)
		skipped = record.skipped("came too late")
		self.assertEqual(skipped.status, SKIPPED)
		self.assertEqual(chained_one_shots(skipped.log), [])
		draft = make_task(f"{HERE}.sample_producer", submit=False)
		draft.append("then_run", {"next_task": b.name})
		draft.save()
		tried = execute_task(draft.name, component=COMPONENT_WORKER)
		self.assertEqual(tried.status, SUCCESS)
		self.assertEqual(chained_one_shots(tried.log), [])  # a draft's run is a try-out

	def test_deleting_the_first_log_keeps_the_chained_run(self):
		a = make_task(f"{HERE}.sample_producer")
		b = make_task(f"{HERE}.sample_consumer")
		then_run(a, {"next_task": b.name})
		first = execute_task(a.name, component=COMPONENT_WORKER)
		shot = chained_one_shots(first.log)[0]
		frappe.delete_doc("BTU Task Log", first.log)
		frappe.db.commit()
		self.assertIsNone(frappe.db.get_value("BTU Task Schedule", shot.name, "chained_from"))
		second = self.run_one_shot(b.name, shot.name)
		self.assertEqual(second["status"], SUCCESS)
		self.assertIsNone(
			json.loads(frappe.db.get_value("BTU Task Log", second["log"], "result_message"))["chain_input"]
		)
