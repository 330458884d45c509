"""Password hashing and policy, signing keys, access tokens, opaque secrets."""
