"""Click commands. The only importer of click; nothing else imports this package."""
