// BTU Scheduler Status: is the daemon answering, what will run next, how busy are the queues.
frappe.pages["btu-scheduler-status"].on_page_load = function (wrapper) {
	const page = frappe.ui.make_app_page({
		parent: wrapper,
		title: __("BTU Scheduler Status"),
		single_column: true,
	});
	const view = new BTUSchedulerStatus(page);
	wrapper.btu_status_view = view;
	page.set_primary_action(__("Refresh"), () => view.load(), "refresh");
	page.add_inner_button(__("Ping daemon"), () =>
		frappe.xcall(btu.api + "ping_daemon").then((reply) => btu.show_daemon_reply(reply, __("Ping")))
	);
	page.add_inner_button(__("Resync all schedules"), () =>
		frappe
			.xcall(btu.api + "resync_all_schedules")
			.then((reply) => btu.show_daemon_reply(reply, __("Resync all schedules")))
			.then(() => setTimeout(() => view.load(), 1500))
	);
	page.add_inner_button(__("BTU Configuration"), () => frappe.set_route("Form", "BTU Configuration"));
	view.load();
};

frappe.pages["btu-scheduler-status"].on_page_show = function (wrapper) {
	wrapper.btu_status_view && wrapper.btu_status_view.load();
};

class BTUSchedulerStatus {
	constructor(page) {
		this.page = page;
		this.$body = $(`<div class="btu-status-page"></div>`).appendTo(page.main);
	}

	load() {
		this.page.set_indicator(__("Loading"), "blue");
		return frappe.xcall(btu.api + "scheduler_status").then((s) => this.render(s));
	}

	render(s) {
		const d = s.daemon;
		const pause = this.pause_reasons(s);
		if (!d.reachable) this.page.set_indicator(__("Daemon unreachable"), "red");
		else if (s.daemon_serves_this_site === false) this.page.set_indicator(__("Daemon does not serve this site"), "orange");
		else if (pause.length) this.page.set_indicator(__("Daemon running, site paused"), "orange");
		else this.page.set_indicator(__("Daemon running"), "green");
		this.$body.html(
			[this.pause_card(pause), this.alerts_card(s), this.email_card(s), this.daemon_card(s), this.upcoming_card(s), this.queues_card(s), this.logs_card(s)].join("")
		);
	}

	// Why the site is paused: what the daemon applies (it notices a change within a second, a
	// BTU Configuration change at the refresh its save asks for) and what the site itself says.
	pause_reasons(s) {
		const reasons = new Set([...((s.daemon_pause || {}).reasons || []), ...((s.pause || {}).reasons || [])]);
		return [...reasons];
	}

	pause_card(reasons) {
		if (!reasons.length) return "";
		const items = reasons.map((r) => `<li>${btu.escape(r)}</li>`).join("");
		return `<div class="btu-card btu-paused frappe-card p-3 border-warning"><h5 class="text-warning">${__("Schedules paused")}</h5>
			<p>${__("The scheduler enqueues nothing for this site while any of these is set:")}</p><ul>${items}</ul>
			<p class="text-muted">${__("Runs that fall due meanwhile wait. On resume, one at most misfire_grace late runs once; older ones are skipped and logged.")}</p></div>`;
	}

	email_card(s) {
		if (!s.email_warning) return "";
		return `<div class="btu-card btu-email-warning frappe-card p-3 border-warning"><h5 class="text-warning">${__("Emails not sent")}</h5>
			<p>${btu.escape(s.email_warning)}</p></div>`;
	}

	card(title, body) {
		return `<div class="btu-card frappe-card p-3"><h5>${title}</h5>${body}</div>`;
	}

	table(headers, rows, empty) {
		if (!rows.length) return `<p class="text-muted">${empty}</p>`;
		const head = headers.map((h) => `<th>${h}</th>`).join("");
		const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c == null ? "" : c}</td>`).join("")}</tr>`).join("");
		// Wrapped so that a wide table scrolls inside its card on a phone instead of widening the page.
		return `<div class="btu-table-wrap"><table class="table table-condensed table-hover"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
	}

	daemon_card(s) {
		const d = s.daemon;
		const data = d.data || {};
		const site = (data.sites || {})[s.site] || {};
		const rows = [
			[__("Socket"), `<code>${btu.escape(d.socket_path)}</code>`],
			[__("Answers"), d.reachable ? `${__("Yes")} (${(d.elapsed_ms || 0).toFixed(1)} ms)` : `<span class="text-danger">${btu.escape(d.message)}</span>`],
		];
		if (d.reachable) {
			rows.push([__("Version"), btu.escape(data.version)]);
			rows.push([__("Uptime"), btu.format_duration(data.uptime_s)]);
			rows.push([__("Enqueues runs"), data.leader ? __("Yes (holds the lease)") : __("No (standing by)")]);
			rows.push([__("Job mode"), btu.escape(data.job_mode)]);
			rows.push([__("Redis"), data.redis_ok ? __("OK") : `<span class="text-danger">${__("Error")}</span>`]);
			rows.push([__("This site"), s.daemon_serves_this_site
				? `${__("served")}: ${__("SQL")} ${site.sql_ok ? __("OK") : __("Error")}, ${__("{0} schedules planned", [site.schedules == null ? "?" : site.schedules])}, ${__("{0} runs in the last hour", [site.runs_last_hour == null ? "?" : site.runs_last_hour])}`
				: `<span class="text-warning">${__("not served by this daemon")}</span>`]);
			if (data.last_error) rows.push([__("Last error"), `<span class="text-danger">${btu.escape(data.last_error)}</span>`]);
		}
		rows.push([__("Time zones"), `${__("BTU default")}: ${btu.escape(s.configuration_time_zone)}; ${__("yours")}: ${btu.escape(s.user_time_zone)}`]);
		const errors = Object.entries(s.schedule_errors || {}).map(([name, why]) => [
			`<a href="/app/btu-task-schedule/${encodeURIComponent(name)}">${btu.escape(name)}</a>`,
			btu.escape(why),
		]);
		return this.card(
			__("Daemon"),
			this.table([__("Item"), __("Value")], rows, "") +
				(errors.length ? `<h6 class="text-danger">${__("Schedules the daemon cannot plan")}</h6>` + this.table([__("Schedule"), __("Reason")], errors, "") : "")
		);
	}

	upcoming_card(s) {
		if (s.upcoming == null) {
			return this.card(__("Upcoming runs"), `<p class="text-danger">${btu.escape((s.errors || {}).upcoming)}</p>`);
		}
		const rows = s.upcoming.map((r) => [
			`<a href="/app/btu-task-schedule/${encodeURIComponent(r.schedule)}">${btu.escape(r.schedule)}</a>`,
			btu.escape(r.task_description || r.task || ""),
			r.once ? `<span class="indicator-pill blue">${__("once")}</span>` : `<code>${btu.escape(r.cron_string || "")}</code>`,
			`${r.fire_time_schedule_zone} <span class="text-muted">${btu.escape(r.time_zone)}</span>`,
			r.fire_time_user_zone,
			this.upcoming_state(r.state),
		]);
		return this.card(
			__("Upcoming runs"),
			this.table(
				[__("Schedule"), __("Task"), __("Rule"), __("Schedule time"), __("Your time ({0})", [btu.escape(s.user_time_zone)]), __("State")],
				rows,
				__("No runs planned in Redis for this site.")
			)
		);
	}

	// The time's rule is the schedule's current one (confirmed), an older one the daemon has not
	// replaced yet (unconfirmed), or the time has passed without a run (overdue: is the daemon up?).
	upcoming_state(state) {
		const labels = {
			confirmed: [__("Confirmed"), "green", __("Planned by the schedule's current rule.")],
			unconfirmed: [__("Not confirmed"), "orange", __("Planned by a rule the schedule no longer has: the daemon has not read the change yet.")],
			overdue: [__("Overdue"), "red", __("This time has passed and the daemon has not enqueued it: is the daemon running?")],
		};
		const [label, color, title] = labels[state] || [__("Unknown"), "gray", ""];
		return `<span class="indicator-pill ${color}" title="${btu.escape(title)}">${label}</span>`;
	}

	queues_card(s) {
		if (s.queues == null) {
			return this.card(__("Queues"), `<p class="text-danger">${btu.escape((s.errors || {}).queues)}</p>`);
		}
		const rows = s.queues.map((q) => [
			btu.escape(q.queue),
			`<code>${btu.escape(q.rq_name)}</code>`,
			q.queued,
			q.oldest_waiting_s == null ? "" : btu.format_duration(q.oldest_waiting_s),
			q.started,
			q.failed,
			q.workers ? q.workers : `<span class="text-danger">0</span>`,
		]);
		return this.card(
			__("Queues"),
			this.table([__("BTU Queue"), __("RQ queue"), __("Waiting"), __("Oldest waiting"), __("Running"), __("Failed"), __("Workers")], rows, __("No BTU Queues."))
		);
	}

	alerts_card(s) {
		const alerts = s.open_alerts || [];
		if (!alerts.length) return "";
		const rows = alerts.map((a) => [
			`<a href="/app/btu-alert/${encodeURIComponent(a.name)}">${btu.escape(a.name)}</a>`,
			`<span class="indicator-pill red">${btu.escape(__(a.kind))}</span>`,
			`<a href="/app/btu-task-schedule/${encodeURIComponent(a.schedule)}">${btu.escape(a.schedule)}</a>`,
			btu.escape(a.message || ""),
			btu.escape(frappe.datetime.str_to_user(a.raised_at)),
		]);
		return this.card(
			__("Open alerts"),
			this.table([__("Alert"), __("Kind"), __("Schedule"), __("What happened"), __("Raised")], rows, "")
		);
	}

	logs_card(s) {
		const rows = (s.latest_logs || []).map((l) => [
			`<a href="/app/btu-task-log/${encodeURIComponent(l.name)}">${btu.escape(l.name)}</a>`,
			btu.escape(l.task_desc_short || l.task),
			`<span class="indicator-pill ${btu.STATUS_COLORS[l.success_fail] || "gray"}">${btu.escape(__(l.success_fail || ""))}</span>`,
			btu.escape(frappe.datetime.str_to_user(l.date_time_started)),
			l.execution_time == null ? "" : `${Number(l.execution_time).toFixed(3)} s`,
		]);
		return this.card(
			__("Latest task logs"),
			this.table([__("Log"), __("Task"), __("Status"), __("Started"), __("Time")], rows, __("No task has run yet."))
		);
	}
}
