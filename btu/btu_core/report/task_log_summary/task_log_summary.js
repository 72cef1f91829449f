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
	// Runs of the 15 busiest tasks by outcome. Built here rather than by the server: the chart's
	// axis shows labels as text, but its tooltip title as HTML, so the tooltip escapes them.
	get_chart_data(columns, result) {
		const top = (result || []).filter((r) => r && r.task).slice(0, 15);
		if (!top.length) return null;
		return {
			data: {
				// Task names on the axis (descriptions were cut to "Hel..."), descriptions in the tooltip.
				labels: top.map((r) => r.task),
				datasets: [
					{ name: __("Success"), values: top.map((r) => r.success || 0) },
					{ name: __("Failed"), values: top.map((r) => r.failed || 0) },
					{ name: __("Timeout"), values: top.map((r) => r.timeout || 0) },
				],
			},
			type: "bar",
			barOptions: { stacked: 1 },
			colors: ["#29CD42", "#E24C4C", "#ECAD4B"],
			tooltipOptions: {
				formatTooltipX: (label) => {
					const row = top.find((r) => r.task === label);
					return btu.escape(row && row.task_desc_short ? `${label}: ${row.task_desc_short}` : label);
				},
			},
		};
	},
	formatter(value, row, column, data, default_formatter) {
		// Text columns (descriptions, groups, rules) may hold markup: Frappe formats Data as HTML.
		if (column.fieldtype === "Data" && value != null) value = btu.escape(value);
		value = default_formatter(value, row, column, data);
		if (column.fieldname === "last_status" && data && data.last_status) {
			const color = btu.STATUS_COLORS[data.last_status];
			value = `<span class="indicator-pill ${color || "gray"}">${value}</span>`;
		}
		return value;
	},
};
