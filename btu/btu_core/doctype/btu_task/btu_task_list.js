// BTU Task list: drafts can be tried out, submitted tasks can be scheduled.
frappe.listview_settings["BTU Task"] = {
	add_fields: ["docstatus", "run_only_as_worker"],
	get_indicator(doc) {
		if (doc.docstatus === 0) return [__("Draft"), "orange", "docstatus,=,0"];
		if (doc.docstatus === 1) return [__("Ready"), "green", "docstatus,=,1"];
		return [__("Cancelled"), "red", "docstatus,=,2"];
	},
};
