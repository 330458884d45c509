"""Sign-in sessions, their refresh tokens and the access-token denylist."""
