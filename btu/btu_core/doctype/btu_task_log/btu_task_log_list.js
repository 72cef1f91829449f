// BTU Task Log list: Success / Failed / Timeout / In-Progress
frappe.listview_settings["BTU Task Log"] = {
	add_fields: ["success_fail"],
	hide_name_column: false,
	get_indicator(doc) {
		const color = { Success: "green", Failed: "red", Timeout: "orange", "In-Progress": "blue" }[doc.success_fail];
		return [__(doc.success_fail || "Unknown"), color || "gray", `success_fail,=,${doc.success_fail}`];
	},
};
