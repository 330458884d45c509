"""Signing keys for access tokens, one concern per module:

- `signing_key`: one key pair, its algorithm, `kid` and JWK form.
- `pem`: keys read from PEM text (settings, environment, key files).
- `ring`: the key ring at one moment, the signing key plus the keys published in the JWKS.
- `lifecycle`: each key's schedule, staged -> active -> retired, and the operations on it
  (rotate, retire, settle) that both key stores apply.
- `manifest` and `directory`: the key ring on disk in `AUTH_KEYS_DIR` (`AUTH_KEY_STORE=directory`).
  The database store is `app.services.tokens.signing_keys`, over its repository.
- `loading`: the ring the settings call for (configured PEM, key directory, development keys).
- `provider`: the ring in use, switched on schedule and reloaded when its store changes.
- `errors`: what goes wrong with keys.
"""
