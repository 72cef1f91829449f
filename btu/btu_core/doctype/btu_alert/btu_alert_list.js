// BTU Alert list: open incidents stand out.
frappe.listview_settings["BTU Alert"] = {
	add_fields: ["status", "kind"],
	get_indicator(doc) {
		return doc.status === "Open" ? [__("Open"), "red", "status,=,Open"] : [__("Cleared"), "green", "status,=,Cleared"];
	},
};
