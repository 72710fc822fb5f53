"""The tamper-evident change log (SPEC section 4): records, hash chain, stores."""
