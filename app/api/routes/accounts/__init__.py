"""Routes of a user's own account: registration, /users/me, verification and recovery."""
