"""Reading the original daemon's TOML for the upgrade patch."""

from __future__ import annotations

from btu.btu_core.legacy_config import original_time_zone


def test_takes_the_first_readable_valid_time_zone(tmp_path):
	missing = tmp_path / "missing.toml"
	broken = tmp_path / "broken.toml"
	broken.write_text("time_zone_string = [")
	bad_zone = tmp_path / "bad.toml"
	bad_zone.write_text('time_zone_string = "Pacific Time"\n')
	good = tmp_path / "good.toml"
	good.write_text('name = "BTU Scheduler Daemon"\ntime_zone_string = "America/Los_Angeles"\n')
	zone, source = original_time_zone((missing, broken, bad_zone, good))
	assert zone == "America/Los_Angeles" and str(good) in source


def test_explains_why_there_is_none(tmp_path):
	bad_zone = tmp_path / "bad.toml"
	bad_zone.write_text('time_zone_string = "Pacific Time"\n')
	zone, reason = original_time_zone((bad_zone,))
	assert zone is None and "Unknown time zone 'Pacific Time'" in reason
	assert original_time_zone((tmp_path / "none.toml",)) == (
		None,
		"no original BTU daemon configuration file found",
	)
