"""Sign-in sessions, their refresh tokens, the access-token denylist and the signing keys (when
the key ring lives in the database)."""
