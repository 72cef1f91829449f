// BTU Queue form
frappe.ui.form.on("BTU Queue", {
	refresh(frm) {
		if (!frm.is_new()) {
			frm.set_intro(
				__("Tasks in this queue need a worker listening on it, e.g. <code>bench worker --queue {0}</code>.", [frm.doc.name]),
				"blue"
			);
		}
	},
});
