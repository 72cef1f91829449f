// Scheduled Task Summary
frappe.query_reports["Scheduled Task Summary"] = {
	filters: [
		{ fieldname: "task", label: __("Task"), fieldtype: "Link", options: "BTU Task" },
		{
			fieldname: "enabled",
			label: __("Enabled"),
			fieldtype: "Select",
			options: ["", "Enabled", "Disabled"],
			default: "Enabled",
		},
	],
	formatter(value, row, column, data, default_formatter) {
		// Text columns (descriptions, groups, rules) may hold markup: Frappe formats Data as HTML.
		if (column.fieldtype === "Data" && value != null) value = btu.escape(value);
		value = default_formatter(value, row, column, data);
		if (column.fieldname === "scheduler_note" && data && data.scheduler_note) {
			value = `<span class="text-danger">${value}</span>`;
		}
		if (column.fieldname === "last_status" && data && data.last_status) {
			const color = { Success: "green", Failed: "red", Timeout: "orange", "In-Progress": "blue" }[data.last_status];
			value = `<span class="indicator-pill ${color || "gray"}">${value}</span>`;
		}
		return value;
	},
};
