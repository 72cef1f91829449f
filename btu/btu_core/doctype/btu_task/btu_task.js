// BTU Task form
frappe.ui.form.on("BTU Task", {
	refresh(frm) {
		frm.dashboard.clear_headline(); // Desk's set_headline appends: one headline, not one per refresh
		if (frm.is_new()) return;
		const runnable = frm.doc.docstatus < 2;
		if (runnable && !frm.doc.run_only_as_worker) {
			frm.add_custom_button(__("Run now on this server"), () => run_saved(frm, btu.run_task_on_server), __("Run"));
		}
		if (runnable) {
			frm.add_custom_button(__("Run now in a worker"), () => run_saved(frm, btu.run_task_in_worker), __("Run"));
		}
		if (frm.doc.docstatus === 1) {
			frm.add_custom_button(
				__("Task Schedule"),
				() => frappe.new_doc("BTU Task Schedule", { task: frm.doc.name }),
				__("Create")
			);
		}
		frm.add_custom_button(
			__("Task Logs"),
			() => frappe.set_route("List", "BTU Task Log", { task: frm.doc.name }),
			__("View")
		);
		if (frm.doc.docstatus === 0) {
			frm.dashboard.set_headline(
				__("Submit this task to schedule it. Drafts can already be run with the Run buttons."),
				"blue"
			);
		}
	},
});

function run_saved(frm, action) {
	if (frm.is_dirty()) {
		frappe.msgprint(__("Save the task first: runs use the saved function and arguments."));
		return;
	}
	action(frm.doc.name).then(() => frm.reload_doc());
}
