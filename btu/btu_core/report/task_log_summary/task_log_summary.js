// Task Log Summary
frappe.query_reports["Task Log Summary"] = {
	filters: [
		{
			fieldname: "from_date",
			label: __("From Date"),
			fieldtype: "Date",
			default: frappe.datetime.add_days(frappe.datetime.get_today(), -7),
			reqd: 1,
		},
		{ fieldname: "to_date", label: __("To Date"), fieldtype: "Date", default: frappe.datetime.get_today(), reqd: 1 },
		{ fieldname: "task", label: __("Task"), fieldtype: "Link", options: "BTU Task" },
		{ fieldname: "schedule", label: __("Schedule"), fieldtype: "Link", options: "BTU Task Schedule" },
		{ fieldname: "task_group", label: __("Task Group"), fieldtype: "Data" },
	],
	formatter(value, row, column, data, default_formatter) {
		// Text columns (descriptions, groups, rules) may hold markup: Frappe formats Data as HTML.
		if (column.fieldtype === "Data" && value != null) value = btu.escape(value);
		value = default_formatter(value, row, column, data);
		if (column.fieldname === "last_status" && data && data.last_status) {
			const color = { Success: "green", Failed: "red", Timeout: "orange", "In-Progress": "blue" }[data.last_status];
			value = `<span class="indicator-pill ${color || "gray"}">${value}</span>`;
		}
		return value;
	},
};
