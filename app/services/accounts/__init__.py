"""A user's own account: registration, profile, password, email verification, recovery."""
