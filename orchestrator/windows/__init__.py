"""Maintenance windows and freezes: occurrences, open/closed answers, scheduler export.

Public entry points (imported lazily by commands):
- occurrences.occurrences / next_occurrences / compile_window
- check.check_group / find_open_occurrence / trigger_guard / misfired
- upcoming.upcoming (`windows next`: N occurrences within a stated search bound)
- schedule.validate_schedule, lint.window_warnings (used by `validate`)
- export.export_cron / export_systemd
"""
