"""Hosts and groups, read by ansible-core's own inventory parser."""
