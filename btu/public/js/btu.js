// BTU shared Desk helpers (loaded on every Desk page through app_include_js).
frappe.provide("btu");

btu.api = "btu.btu_api.endpoints.";

btu.STATUS_COLORS = {
	Success: "green",
	Failed: "red",
	Timeout: "orange",
	"In-Progress": "blue",
	Skipped: "gray",
};

btu.escape = (text) => frappe.utils.escape_html(text == null ? "" : String(text));

// Free text of BTU's DocTypes (descriptions, groups, task output, names of things a task
// printed) is text, never markup: Frappe's own list, report view and read-only form fields format
// Data and Text values as HTML, so each of these fields gets a formatter that escapes it
// (frappe.format uses df.formatter first). Task output fields are Code, which Frappe escapes.
btu.TEXT_FIELDS = {
	"BTU Task": ["desc_short", "task_group", "desc_long", "function_string"],
	"BTU Task Schedule": ["task_description", "schedule_description", "cron_string", "redis_job_id"],
	"BTU Task Log": ["task_desc_short", "task_component", "job_id", "email_note"],
	"BTU Task Log Step": ["step_name"],
	"BTU Queue": ["description"],
	"BTU Configuration": ["email_subject_prefix", "path_to_btu_scheduler_uds"],
};
btu.text_formatter = (value) => btu.escape(value).replace(/\n/g, "<br>");
// A Task Log keeps the name of a task or schedule that was deleted since: shown as text, not as a
// link to nothing (btu.btu_core.task_deletion marks it).
btu.DELETED_LINKS = { "BTU Task Log": { task: "task_deleted", schedule: "schedule_deleted" } };
// Durations in seconds shown with the precision that fits: "3 ms", "1.25 s", "2m 5s".
btu.DURATION_FIELDS = { "BTU Task Log": ["execution_time"], "BTU Task Log Step": ["duration"] };
btu.format_run_time = (seconds) => {
	if (seconds == null || seconds === "") return "";
	seconds = Number(seconds);
	if (seconds < 0.0005) return __("< 1 ms"); // stored to the millisecond
	if (seconds < 1) return __("{0} ms", [Math.round(seconds * 1000)]);
	if (seconds < 60) return __("{0} s", [seconds.toFixed(seconds < 10 ? 2 : 1)]);
	return btu.format_duration(seconds);
};
btu.mark_text_field = (df) => {
	if (!df) return;
	if ((btu.DURATION_FIELDS[df.parent] || []).includes(df.fieldname)) df.formatter = (value) => btu.format_run_time(value);
	if ((btu.TEXT_FIELDS[df.parent] || []).includes(df.fieldname)) df.formatter = btu.text_formatter;
	if (df.parent === "BTU Task Schedule" && df.fieldname === "last_log") {
		// A name kept as Data (a Link would stop Task Logs from being deleted): shown as a link.
		df.formatter = (value) =>
			value ? `<a href="/app/btu-task-log/${encodeURIComponent(value)}">${btu.escape(value)}</a>` : "";
	}
	const flag = (btu.DELETED_LINKS[df.parent] || {})[df.fieldname];
	if (flag) {
		df.formatter = (value, field, options, doc) =>
			doc && doc[flag]
				? `${btu.escape(value)} <span class="text-muted">(${__("deleted")})</span>`
				: frappe.form.formatters.Link(value, field, options, doc);
	}
};
(() => {
	const add_field = frappe.meta.add_field;
	frappe.meta.add_field = function (df) {
		btu.mark_text_field(df);
		return add_field.apply(this, arguments);
	};
	for (const [doctype, fields] of Object.entries(frappe.meta.docfield_map || {})) {
		if (btu.TEXT_FIELDS[doctype]) Object.values(fields).forEach(btu.mark_text_field);
	}
})();

btu.pre = (text) =>
	`<pre class="btu-output">${btu.escape(text || "") || `<span class="text-muted">${__("(empty)")}</span>`}</pre>`;

// Fill an Autocomplete field with the IANA time zone names (fetched once per page load).
btu.set_time_zone_options = (frm, fieldname) => {
	const apply = (zones) => {
		frm.set_df_property(fieldname, "options", zones);
		frm.refresh_field(fieldname);
	};
	if (btu._zones) return apply(btu._zones);
	frappe.xcall(btu.api + "time_zones").then((zones) => {
		btu._zones = zones;
		apply(zones);
	});
};

// Dialog showing one task run: status, timing, captured output, result or traceback.
btu.show_run_result = (run, title) => {
	const color = btu.STATUS_COLORS[run.status] || "gray";
	const log_link = run.log
		? `<a href="/app/btu-task-log/${encodeURIComponent(run.log)}">${btu.escape(run.log)}</a>`
		: `<span class="text-muted">${__("none (transient task)")}</span>`;
	const html = `
		<div class="btu-run-result">
			<p><span class="indicator-pill ${color}">${btu.escape(__(run.status))}</span>
			&nbsp; ${__("Execution time")}: <b>${(run.execution_time || 0).toFixed(3)} s</b>
			&nbsp; ${__("Task Log")}: ${log_link}</p>
			<h6>${__("Output (stdout and stderr)")}</h6>${btu.pre(run.stdout)}
			<h6>${run.status === "Success" ? __("Return value") : __("Result / traceback")}</h6>${btu.pre(run.result_message)}
		</div>`;
	const dialog = new frappe.ui.Dialog({
		title: title || __("Task Run"),
		size: "extra-large",
		fields: [{ fieldtype: "HTML", fieldname: "result" }],
	});
	dialog.fields_dict.result.$wrapper.html(html);
	dialog.show();
	return dialog;
};

// Message for a daemon reply (ping, refresh, resync).
btu.show_daemon_reply = (reply, title) => {
	const rows = [];
	const data = reply.data || {};
	rows.push([__("Socket"), `<code>${btu.escape(reply.socket_path)}</code>`]);
	rows.push([__("Round trip"), `${(reply.elapsed_ms || 0).toFixed(1)} ms`]);
	rows.push([__("Answer"), btu.escape(reply.message)]);
	if (data.version) rows.push([__("Daemon version"), btu.escape(data.version)]);
	if (data.uptime_s != null) rows.push([__("Uptime"), btu.format_duration(data.uptime_s)]);
	if (data.leader != null) rows.push([__("Enqueues runs"), data.leader ? __("Yes (holds the lease)") : __("No (standing by)")]);
	const table = rows.map(([k, v]) => `<tr><td class="text-muted">${k}</td><td>${v}</td></tr>`).join("");
	frappe.msgprint({
		title: title || __("BTU Scheduler Daemon"),
		indicator: !reply.reachable ? "red" : reply.ok ? "green" : "orange",
		message: `<p>${reply.reachable ? (reply.ok ? __("The daemon answered.") : __("The daemon refused the request.")) : __("The daemon is unreachable.")}</p>
			<table class="table table-condensed">${table}</table>`,
	});
};

btu.format_duration = (seconds) => {
	seconds = Math.round(seconds || 0);
	const d = Math.floor(seconds / 86400);
	const h = Math.floor((seconds % 86400) / 3600);
	const m = Math.floor((seconds % 3600) / 60);
	const s = seconds % 60;
	return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(" ");
};

// Run a task synchronously on the web server and show the result.
btu.run_task_on_server = (task) =>
	btu
		.call(btu.api + "run_task_now", { task }, {
			type: "POST",
			freeze: true,
			freeze_message: __("Running task {0} on this server...", [task]),
		})
		.then((run) => btu.show_run_result(run, __("Task {0}", [task])));

btu.run_task_in_worker = (task) =>
	btu.call(btu.api + "run_task_in_worker", { task }).then((r) => {
		frappe.show_alert({
			message: __("Task {0} queued in {1} (job {2}). Its Task Log appears when a worker has run it.", [
				task,
				r.queue,
				r.job_id || "?",
			]),
			indicator: "green",
		}, 10);
	});

// A whitelisted call as a promise that resolves with the answer and stays pending when the server
// refuses (Frappe has shown its message then): no unhandled rejection, the chain just stops.
// opts: frappe.call's own (freeze, freeze_message, type).
btu.call = (method, args, opts = {}) =>
	new Promise((resolve) => frappe.call({ method, args, ...opts, callback: (r) => resolve(r.message) }));
