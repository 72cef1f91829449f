// BTU Task Log form (read-only record of one run): its steps, its attempts, and Retry.
frappe.ui.form.on("BTU Task Log", {
	refresh(frm) {
		frm.disable_save();
		frm.dashboard.clear_headline();
		const color = btu.STATUS_COLORS[frm.doc.success_fail] || "gray";
		frm.page.set_indicator(__(frm.doc.success_fail || ""), color);
		if (frm.doc.task) {
			frm.add_custom_button(__("Open Task"), () => frappe.set_route("Form", "BTU Task", frm.doc.task));
		}
		if (frm.doc.schedule) {
			frm.add_custom_button(__("Open Schedule"), () =>
				frappe.set_route("Form", "BTU Task Schedule", frm.doc.schedule)
			);
		}
		btu_show_attempts(frm);
	},
});

function btu_retry_log(frm) {
	frappe.confirm(
		__("Run task {0} again now, with the arguments of this run? The new run's Task Log will link to this one.", [
			frm.doc.task,
		]),
		() =>
			btu.call("btu.btu_api.housekeeping.retry_task_log", { log: frm.doc.name }).then((r) => {
				frappe.show_alert(
					{
						message: __("Retry planned: run {0} ({1}). Its Task Log appears when a worker has run it.", [
							r.run_id,
							r.description || "",
						]),
						indicator: "green",
					},
					10
				);
				frm.reload_doc();
			})
	);
}

function btu_show_attempts(frm) {
	if (frm.is_new()) return;
	btu.call("btu.btu_api.housekeeping.task_log_attempts", { log: frm.doc.name }, { type: "GET" }).then((r) => {
		if (frm.doc.name !== cur_frm.doc.name) return; // another log opened meanwhile
		// Retry only a failed run not retried yet (a log is retried once; its retry says what became of it).
		if (["Failed", "Timeout"].includes(frm.doc.success_fail) && !r.retry && !frm.custom_buttons[__("Retry")]) {
			const button = frm.add_custom_button(__("Retry"), () => btu_retry_log(frm));
			button.addClass("btn-primary btu-retry");
		}
		const parts = [];
		const attempt = frm.doc.attempt || 1;
		if (r.max_attempts > 1 || attempt > 1) {
			parts.push(__("Attempt {0} of {1}.", [attempt, Math.max(r.max_attempts || 1, attempt)]));
		}
		if (frm.doc.retry_of) {
			parts.push(
				__("Retry of {0}.", [`<a href="/app/btu-task-log/${encodeURIComponent(frm.doc.retry_of)}">${btu.escape(frm.doc.retry_of)}</a>`])
			);
		}
		if (r.retry && r.retry.log) {
			parts.push(
				__("Retried by {0} ({1}).", [
					`<a href="/app/btu-task-log/${encodeURIComponent(r.retry.log)}">${btu.escape(r.retry.log)}</a>`,
					btu.escape(__(r.retry.status)),
				])
			);
		} else if (r.retry) {
			parts.push(
				__("A retry is planned: run {0} ({1}).", [
					`<a href="/app/btu-task-schedule/${encodeURIComponent(r.retry.run_id)}">${btu.escape(r.retry.run_id)}</a>`,
					btu.escape(r.retry.when || ""),
				])
			);
		}
		if (r.attempts && r.attempts.length > 1) {
			const chain = r.attempts
				.map((a) => {
					const label = `${btu.escape(a.name)} (${btu.escape(__(a.success_fail || ""))})`;
					return a.name === frm.doc.name ? `<b>${label}</b>` : `<a href="/app/btu-task-log/${encodeURIComponent(a.name)}">${label}</a>`;
				})
				.join(" → ");
			parts.push(__("Attempts: {0}", [chain]));
		}
		if (parts.length) {
			const failed = ["Failed", "Timeout"].includes(frm.doc.success_fail);
			frm.dashboard.set_headline(`<span class="btu-attempts">${parts.join(" ")}</span>`, failed && !r.retry ? "orange" : "blue");
		}
	});
}
