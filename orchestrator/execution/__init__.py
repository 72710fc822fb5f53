"""ansible-runner workspaces, event handlers, batches, budgets."""
