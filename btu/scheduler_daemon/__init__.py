"""The BTU scheduler daemon. Imports nothing from frappe: it runs beside a bench, not inside it."""
