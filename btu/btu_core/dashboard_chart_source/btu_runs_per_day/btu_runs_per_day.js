// Dashboard Chart Source "BTU Runs per Day": runs and failures (Failed + Timeout) per day from BTU Task Logs.
frappe.provide("frappe.dashboards.chart_sources");

frappe.dashboards.chart_sources["BTU Runs per Day"] = {
	method: "btu.btu_core.dashboard_chart_source.btu_runs_per_day.btu_runs_per_day.get",
	filters: [
		{ fieldname: "task", label: __("Task"), fieldtype: "Link", options: "BTU Task" },
		{ fieldname: "schedule", label: __("Schedule"), fieldtype: "Link", options: "BTU Task Schedule" },
	],
};
