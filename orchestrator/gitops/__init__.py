"""GitOps: what a policy change between two git revisions does (plan), applying a merged
revision (apply), and refusing to act from a revision that is not the applied one."""
