// BTU Task Log list: Success / Failed / Timeout / In-Progress / Skipped, attempts, and Delete by date range.
frappe.listview_settings["BTU Task Log"] = {
	add_fields: ["success_fail", "attempt", "retry_of", "task", "task_deleted", "schedule_deleted"],
	hide_name_column: false,
	formatters: {
		// Frappe's list hands a 0 over as "": a fast run is "< 1 ms", a run still going has none yet.
		execution_time(value, df, doc) {
			return doc.success_fail === "In-Progress" ? "" : btu.format_run_time(value || 0);
		},
		schedule(value, df, doc) {
			return doc.schedule_deleted ? `${btu.escape(value)} <span class="text-muted">(${__("deleted")})</span>` : btu.escape(value);
		},
	},
	get_indicator(doc) {
		const color = btu.STATUS_COLORS[doc.success_fail];
		const label = __(doc.success_fail || "Unknown") + (doc.attempt > 1 ? ` (${__("attempt {0}", [doc.attempt])})` : "");
		return [label, color || "gray", `success_fail,=,${doc.success_fail}`];
	},
	onload(listview) {
		if (!frappe.model.can_delete("BTU Task Log")) return;
		listview.page.add_inner_button(__("Delete by date range"), () => btu_delete_logs_dialog(listview));
	},
};

function btu_delete_logs_dialog(listview) {
	const today = frappe.datetime.get_today();
	const dialog = new frappe.ui.Dialog({
		title: __("Delete Task Logs by date range"),
		fields: [
			{ fieldtype: "Date", fieldname: "from_date", label: __("From Date"), reqd: 1, default: frappe.datetime.add_months(today, -3) },
			{ fieldtype: "Column Break", fieldname: "col1" },
			{ fieldtype: "Date", fieldname: "to_date", label: __("To Date"), reqd: 1, default: frappe.datetime.add_months(today, -1) },
			{ fieldtype: "Section Break", fieldname: "sec1" },
			{ fieldtype: "Select", fieldname: "status", label: __("Status"), options: ["", "Success", "Failed", "Timeout", "Skipped"] },
			{ fieldtype: "Column Break", fieldname: "col2" },
			{ fieldtype: "Link", fieldname: "task", label: __("Task"), options: "BTU Task" },
			{ fieldtype: "Section Break", fieldname: "sec2" },
			{ fieldtype: "HTML", fieldname: "count" },
		],
		primary_action_label: __("Delete"),
		primary_action(values) {
			count(values).then((n) => {
				if (!n) return;
				frappe.confirm(n === 1 ? __("Delete 1 Task Log for good?") : __("Delete {0} Task Logs for good?", [n]), () =>
					btu.call("btu.btu_api.housekeeping.delete_task_logs", values, { freeze: true }).then((r) => {
						dialog.hide();
						frappe.show_alert({ message: r.deleted === 1 ? __("Deleted 1 Task Log.") : __("Deleted {0} Task Logs.", [r.deleted]), indicator: "green" }, 7);
						listview.refresh();
					})
				);
			});
		},
	});
	const show = (html) => dialog.fields_dict.count.$wrapper.html(html);
	const count = (values) => {
		if (!values.from_date || !values.to_date) return Promise.resolve(0);
		return btu.call("btu.btu_api.housekeeping.count_task_logs", values, { type: "GET" }).then((n) => {
			show(
				`<p class="btu-delete-count ${n ? "text-danger" : "text-muted"}">${
					n
						? n === 1
							? __("1 Task Log started from {1} to {2} will be deleted, with its steps. In-Progress logs are kept.", [
								n,
								frappe.datetime.str_to_user(values.from_date),
								frappe.datetime.str_to_user(values.to_date),
						  ])
							: __("{0} Task Logs started from {1} to {2} will be deleted, with their steps. In-Progress logs are kept.", [
								n,
								frappe.datetime.str_to_user(values.from_date),
								frappe.datetime.str_to_user(values.to_date),
						  ])
						: __("No Task Log matches.")
				}</p>`
			);
			return n;
		});
	};
	const recount = () => count(dialog.get_values(true) || {});
	for (const name of ["from_date", "to_date", "status", "task"]) {
		dialog.fields_dict[name].df.onchange = recount;
	}
	dialog.show();
	recount();
}
