// BTU Task Schedule form
frappe.ui.form.on("BTU Task Schedule", {
	setup(frm) {
		frm.set_query("task", () => ({ filters: { docstatus: 1 } }));
	},

	onload(frm) {
		btu.set_time_zone_options(frm, "cron_timezone");
	},

	refresh(frm) {
		setup_run_at(frm);
		if (frm.doc.run_frequency !== "Once") {
			frm.add_custom_button(__("Show next runs"), () => show_next_runs(frm));
		}
		if (!frm.is_new() && frm.doc.paused_reason && !frm.doc.enabled) {
			const resume = frm.add_custom_button(__("Resume"), () => {
				frm.set_value("enabled", 1);
				frm.save();
			});
			resume.removeClass("btn-default").addClass("btn-primary");
		}
		if (!frm.is_new() && frm.doc.run_frequency === "Once" && frm.doc.enabled) {
			frm.add_custom_button(__("Cancel this run"), () => cancel_one_shot(frm));
		}
		if (!frm.is_new()) {
			frm.add_custom_button(__("Resync with daemon"), () =>
				frappe
					.xcall(btu.api + "resync_schedule", { schedule: frm.doc.name })
					.then((reply) => btu.show_daemon_reply(reply, __("Resync {0}", [frm.doc.name])))
			);
			frm.add_custom_button(
				__("Task Logs"),
				() => frappe.set_route("List", "BTU Task Log", { schedule: frm.doc.name }),
				__("View")
			);
			show_daemon_state(frm);
		}
	},

	run_frequency(frm) {
		if (frm.doc.run_frequency !== "Cron Style") {
			// The cron string is computed from the frequency fields on save.
			frm.set_value("cron_string", "");
		}
		frm.refresh();
	},

	cron_timezone(frm) {
		setup_run_at(frm);
	},
});

// Run At is a wall-clock time read in the schedule's own zone (as its cron rule would be): Desk
// must neither shift it to the system time zone when the user's differs (its Datetime control
// does) nor label it with the user's zone.
function setup_run_at(frm) {
	const control = frm.fields_dict.run_at;
	if (!control) return;
	control.df.hide_timezone = 1;
	control.parse = (value) => (value ? frappe.datetime.user_to_str(value, false) : value);
	const zone = frm.doc.cron_timezone || __("BTU Configuration's time zone");
	const text = __("Wall-clock date and time of the run in {0} (this schedule's Time Zone).", [btu.escape(zone)]);
	if (control.df.description !== text) frm.set_df_property("run_at", "description", text);
}

function cancel_one_shot(frm) {
	frappe.confirm(__("Cancel the run of {0}? It will not run (its record stays, disabled).", [frm.doc.name]), () =>
		frappe.xcall("btu.api.cancel", { run_id: frm.doc.name }).then((cancelled) => {
			frappe.show_alert(
				{
					message: cancelled ? __("Run {0} cancelled.", [frm.doc.name]) : __("Run {0} had already started.", [frm.doc.name]),
					indicator: cancelled ? "green" : "orange",
				},
				8
			);
			frm.reload_doc();
		})
	);
}

function preview_args(frm) {
	const d = frm.doc;
	return {
		run_frequency: d.run_frequency,
		minute: d.minute,
		hour: d.hour,
		day_of_week: d.day_of_week,
		day_of_month: d.day_of_month,
		month: d.month,
		cron_string: d.cron_string,
		cron_timezone: d.cron_timezone,
		holiday_list_doctype: d.holiday_list_doctype,
		holiday_list: d.holiday_list,
		on_holiday: d.on_holiday,
		jitter_seconds: d.jitter_seconds,
		schedule: frm.is_new() ? null : d.name,
		count: 10,
	};
}

function calendar_note(p) {
	// What the business calendar and the jitter did to the rule's times (values escaped: a list's
	// name is user text).
	const notes = [];
	if (p.holiday_list) {
		notes.push(
			p.on_holiday === "Next Working Day"
				? __("Fire times on the holidays of {0} move to the next working day.", [
						`<b>${btu.escape(p.holiday_list)}</b>`,
				  ])
				: __("Fire times on the holidays of {0} are skipped.", [`<b>${btu.escape(p.holiday_list)}</b>`])
		);
	}
	if (p.jitter_seconds && p.jitter_shown) {
		notes.push(__("Each run is delayed by up to {0} s (jitter): the times below include it.", [p.jitter_seconds]));
	} else if (p.jitter_seconds) {
		notes.push(__("Each run will be delayed by up to {0} s (jitter); save to see the delays.", [p.jitter_seconds]));
	}
	return notes.length ? `<p class="text-muted">${notes.join(" ")}</p>` : "";
}

function show_next_runs(frm) {
	// An invalid rule is refused by the server, whose message Desk shows; nothing else to do then
	// (without the catch the rejected promise would be an uncaught error in the console).
	frappe.xcall(btu.api + "preview_schedule", preview_args(frm)).catch(() => null).then((p) => {
		if (!p) return;
		const same = p.time_zone === p.user_time_zone;
		const rows = p.runs
			.map(
				(r, i) => `<tr><td>${i + 1}</td><td>${r.fire_time_schedule_zone}${
					r.delay_seconds ? ` <span class="text-muted">(+${cint(r.delay_seconds)} s)</span>` : ""
				}</td>
				${same ? "" : `<td>${r.fire_time_user_zone}</td>`}<td class="text-muted">${r.fire_time_utc}</td></tr>`
			)
			.join("");
		frappe.msgprint({
			title: __("Next {0} runs", [p.runs.length]),
			wide: true,
			message: `<p><code>${btu.escape(p.cron_string)}</code> &mdash; ${btu.escape(p.description)}</p>
				${calendar_note(p)}
				<table class="table table-condensed">
					<thead><tr><th>#</th><th>${btu.escape(p.time_zone)} (${__("schedule")})</th>
					${same ? "" : `<th>${btu.escape(p.user_time_zone)} (${__("you")})</th>`}<th>${__("UTC")}</th></tr></thead>
					<tbody>${rows || `<tr><td colspan="4">${__("This rule never fires again.")}</td></tr>`}</tbody>
				</table>`,
		});
	});
}

function show_daemon_state(frm) {
	// Desk's set_headline appends: clear first, and let only the newest reply write (a save
	// refreshes the form more than once, and replies can arrive in any order). One headline.
	const asked = (frm.__btu_state_request = (frm.__btu_state_request || 0) + 1);
	frappe.xcall(btu.api + "schedule_daemon_state", { schedule: frm.doc.name }).then((s) => {
		if (asked !== frm.__btu_state_request || frm.doc.name !== s.schedule) return;
		frm.dashboard.clear_headline();
		const lines = [];
		let color = "green";
		const worse = (c) => {
			const rank = { green: 0, blue: 1, orange: 2, red: 3 };
			if (rank[c] > rank[color]) color = c;
		};
		if (frm.doc.paused_reason && !frm.doc.enabled) {
			lines.push(__("{0} Resume enables it again.", [btu.escape(frm.doc.paused_reason)]));
			worse("orange");
		}
		if (s.paused && s.paused.paused) {
			lines.push(__("Paused ({0}): the scheduler enqueues nothing for this site.", [s.paused.reasons.map(btu.escape).join("; ")]));
			worse("orange");
		}
		if (!s.redis_ok) {
			lines.push(__("Cannot read the scheduler's Redis: {0}", [btu.escape(s.error)]));
			worse("orange");
		} else if (s.daemon_error) {
			lines.push(__("The scheduler cannot plan this schedule: {0}", [btu.escape(s.daemon_error)]));
			worse("red");
		} else if (s.one_shot) {
			const [text, c] = one_shot_line(s.one_shot);
			lines.push(text);
			worse(c);
		} else if (s.next_run) {
			const n = s.next_run;
			const mine = n.user_time_zone !== n.time_zone ? ` (${n.fire_time_user_zone} ${btu.escape(n.user_time_zone)})` : "";
			const when = `${n.fire_time_schedule_zone} ${btu.escape(n.time_zone)}${mine}`;
			if (n.state === "unconfirmed") {
				lines.push(
					__("Not confirmed by the scheduler: it still plans {0} by the previous rule {1} ({2}); the new rule applies once the daemon reads this schedule (is it running?).", [
						when,
						`<code>${btu.escape(n.planned_by)}</code>`,
						btu.escape(n.planned_zone),
					])
				);
				worse("orange");
			} else if (n.state === "overdue") {
				lines.push(__("Next run {0} is past and was not run: the scheduler is not firing (daemon down, site paused, or no leader).", [when]));
				worse("orange");
			} else {
				lines.push(__("Next run: {0}", [when]));
			}
		} else if (frm.doc.enabled) {
			lines.push(__("The scheduler holds no next run for this schedule yet (is the daemon running?)."));
			worse("orange");
		}
		const skipped = (s.skipped || []).filter((k) => !s.one_shot || k.reason !== "misfire");
		if (skipped.length) {
			const last = skipped[0];
			lines.push(
				(skipped.length === 1
					? __("1 recent fire time skipped: {0} {1}, {2}.", [last.fire_time_schedule_zone, btu.escape(last.time_zone), skip_reason(last)])
					: __("{0} recent fire times skipped; last: {1} {2}, {3}.", [
							skipped.length,
							last.fire_time_schedule_zone,
							btu.escape(last.time_zone),
							skip_reason(last),
					  ])) + ` <a href="#" class="btu-show-skipped">${__("Show")}</a>`
			);
			worse("orange");
		}
		if (!lines.length) return;
		frm.dashboard.set_headline(lines.join("<br>"), color);
		frm.layout.wrapper.find(".btu-show-skipped").on("click", (e) => {
			e.preventDefault();
			show_skipped(skipped);
		});
	});
}

function skip_reason(k) {
	if (k.reason === "overlap") {
		const job = btu.escape(k.previous_job);
		if (k.previous_status === "started") return __("the previous run was still running (job {0})", [job]);
		if (k.previous_status === "queued") return __("the previous run was still waiting in its queue (job {0})", [job]);
		return __("the previous run had not finished (job {0}, {1})", [job, btu.escape(k.previous_status)]);
	}
	if (k.reason === "misfire") {
		return __("{0} late, more than misfire_grace ({1})", [btu.format_duration(k.late_s), btu.format_duration(k.misfire_grace_s)]);
	}
	return btu.escape(k.reason);
}

function show_skipped(skipped) {
	const rows = skipped
		.map(
			(k) => `<tr><td>${k.fire_time_schedule_zone} <span class="text-muted">${btu.escape(k.time_zone)}</span></td>
			<td>${btu.escape(k.reason)}</td><td>${skip_reason(k)}</td></tr>`
		)
		.join("");
	frappe.msgprint({
		title: __("Skipped fire times"),
		wide: true,
		message: `<table class="table table-condensed btu-skipped"><thead><tr><th>${__("Fire time")}</th><th>${__("Reason")}</th><th>${__("Detail")}</th></tr></thead><tbody>${rows}</tbody></table>
			<p class="text-muted">${__("BTU keeps the newest skipped fire times of a schedule (these {0}); the daemon's log has every one (event=run_skipped_overlap, run_skipped_misfire).", [skipped.length])}</p>`,
	});
}

function one_shot_line(r) {
	const when = btu.escape(r.fire_time || "");
	const log = r.log ? ` <a href="/app/btu-task-log/${encodeURIComponent(r.log)}">${btu.escape(r.log)}</a>` : "";
	switch (r.state) {
		case "pending":
			return [__("Runs once: {0}.", [when]), "green"];
		case "waiting":
			return [__("Runs once: {0}; the scheduler has not planned it yet (is the daemon running?).", [when]), "orange"];
		case "enqueued":
			return [__("Enqueued for a worker ({0}).", [when]), "blue"];
		case "running":
			return [__("Running in a worker ({0}).", [when]) + log, "blue"];
		case "cancelled":
			return [__("Cancelled: this one-shot will not run ({0}).", [when]), "orange"];
		case "missed":
			return [
				__("Did not run: {0} was {1} late when the scheduler could enqueue it, more than misfire_grace ({2}).", [
					when,
					btu.format_duration(r.skipped.late_s),
					btu.format_duration(r.skipped.misfire_grace_s),
				]),
				"red",
			];
		case "Skipped":
			return [__("Did not run: it reached a worker too late (see its Task Log).") + log, "orange"];
		case "Success":
			return [__("Ran once: Success.") + log, "green"];
		case "Failed":
		case "Timeout":
			return [__("Ran once: {0}.", [__(r.state)]) + log, "red"];
		default:
			return [__("Runs once: {0}.", [when]), "blue"];
	}
}
