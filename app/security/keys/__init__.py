"""Signing keys for access tokens, one concern per module:

- `signing_key`: one key pair, its algorithm, `kid` and JWK form.
- `pem`: keys read from PEM text (settings, environment, key files).
- `ring`: the key ring, the signing key plus the keys still published in the JWKS.
- `manifest` and `directory`: the key ring on disk in `AUTH_KEYS_DIR`, and its rotation.
- `loading`: the ring the settings call for (configured PEM, key directory, development keys).
- `provider`: the ring in use, reloaded when the directory changes.
- `errors`: what goes wrong with keys.
"""
