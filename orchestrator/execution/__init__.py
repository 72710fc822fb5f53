"""ansible-runner only: private workspaces, event handlers, check mode."""
