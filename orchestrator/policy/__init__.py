"""Policy language: YAML documents in, typed model objects out (SPEC section 1)."""
