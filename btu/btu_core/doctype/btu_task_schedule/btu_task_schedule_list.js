// BTU Task Schedule list: enabled / disabled
frappe.listview_settings["BTU Task Schedule"] = {
	add_fields: ["enabled", "cron_string", "cron_timezone"],
	get_indicator(doc) {
		return doc.enabled
			? [__("Enabled"), "green", "enabled,=,1"]
			: [__("Disabled"), "gray", "enabled,=,0"];
	},
};
