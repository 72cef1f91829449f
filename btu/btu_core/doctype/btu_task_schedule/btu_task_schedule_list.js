// BTU Task Schedule list: enabled / disabled; one-shots (Run Frequency Once) as pending or over
frappe.listview_settings["BTU Task Schedule"] = {
	add_fields: ["enabled", "cron_string", "cron_timezone", "run_frequency", "run_at"],
	get_indicator(doc) {
		if (doc.run_frequency === "Once") {
			return doc.enabled
				? [__("Runs once"), "blue", "run_frequency,=,Once|enabled,=,1"]
				: [__("Once, over"), "gray", "run_frequency,=,Once|enabled,=,0"];
		}
		return doc.enabled
			? [__("Enabled"), "green", "enabled,=,1"]
			: [__("Disabled"), "gray", "enabled,=,0"];
	},
};
