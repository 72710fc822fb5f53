"""Formats results as text, JSON, Markdown or HTML. Decides nothing."""
