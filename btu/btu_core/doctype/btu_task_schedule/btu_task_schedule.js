// BTU Task Schedule form
frappe.ui.form.on("BTU Task Schedule", {
	setup(frm) {
		frm.set_query("task", () => ({ filters: { docstatus: 1 } }));
	},

	onload(frm) {
		btu.set_time_zone_options(frm, "cron_timezone");
	},

	refresh(frm) {
		frm.add_custom_button(__("Show next runs"), () => show_next_runs(frm));
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
	},
});

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
		count: 10,
	};
}

function show_next_runs(frm) {
	// An invalid rule is refused by the server, whose message Desk shows; nothing else to do then
	// (without the catch the rejected promise would be an uncaught error in the console).
	frappe.xcall(btu.api + "preview_schedule", preview_args(frm)).catch(() => null).then((p) => {
		if (!p) return;
		const same = p.time_zone === p.user_time_zone;
		const rows = p.runs
			.map(
				(r, i) => `<tr><td>${i + 1}</td><td>${r.fire_time_schedule_zone}</td>
				${same ? "" : `<td>${r.fire_time_user_zone}</td>`}<td class="text-muted">${r.fire_time_utc}</td></tr>`
			)
			.join("");
		frappe.msgprint({
			title: __("Next {0} runs", [p.runs.length]),
			wide: true,
			message: `<p><code>${btu.escape(p.cron_string)}</code> &mdash; ${btu.escape(p.description)}</p>
				<table class="table table-condensed">
					<thead><tr><th>#</th><th>${btu.escape(p.time_zone)} (${__("schedule")})</th>
					${same ? "" : `<th>${btu.escape(p.user_time_zone)} (${__("you")})</th>`}<th>UTC</th></tr></thead>
					<tbody>${rows || `<tr><td colspan="4">${__("This rule never fires again.")}</td></tr>`}</tbody>
				</table>`,
		});
	});
}

function show_daemon_state(frm) {
	// Desk's set_headline appends: clear first, and let only the newest reply write (a save
	// refreshes the form more than once, and replies can arrive in any order).
	const asked = (frm.__btu_state_request = (frm.__btu_state_request || 0) + 1);
	frappe.xcall(btu.api + "schedule_daemon_state", { schedule: frm.doc.name }).then((s) => {
		if (asked !== frm.__btu_state_request || frm.doc.name !== s.schedule) return;
		frm.dashboard.clear_headline();
		if (!s.redis_ok) {
			frm.dashboard.set_headline(__("Cannot read the scheduler's Redis: {0}", [btu.escape(s.error)]), "orange");
		} else if (s.daemon_error) {
			frm.dashboard.set_headline(__("The scheduler cannot plan this schedule: {0}", [btu.escape(s.daemon_error)]), "red");
		} else if (s.next_run) {
			const n = s.next_run;
			const mine = n.user_time_zone !== n.time_zone ? ` (${n.fire_time_user_zone} ${btu.escape(n.user_time_zone)})` : "";
			frm.dashboard.set_headline(
				__("Next run: {0} {1}{2}", [n.fire_time_schedule_zone, btu.escape(n.time_zone), mine]),
				"green"
			);
		} else if (frm.doc.enabled) {
			frm.dashboard.set_headline(
				__("The scheduler holds no next run for this schedule yet (is the daemon running?)."),
				"orange"
			);
		}
	});
}
