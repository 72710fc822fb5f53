"""The maintenance sequence: what `run-window` does at an occurrence (guard, lease, groups,
and per group audit; patch and firmware steps join it). It sits above audit, patching and
execution: nothing below imports it."""
