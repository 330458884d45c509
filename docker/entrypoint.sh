#!/bin/sh
# Container entrypoint for authsvc.
#
#   Before any command: if AUTH_DATA_ENCRYPTION_KEY is empty and AUTH_CREATE_KEY_RING is true,
#   the data encryption key (required in production; it encrypts queued mail) is read from
#   data-encryption.key in AUTH_KEYS_DIR, created there on the very first start and kept
#   afterwards, and exported to the command. Set AUTH_DATA_ENCRYPTION_KEY (in .env) to bring
#   your own.
#
#   entrypoint.sh [serve] [SERVE OPTIONS...]
#       The default. In order:
#         1. wait for the database (`authsvc wait-for-db`, AUTH_DB_WAIT_TIMEOUT seconds,
#            default 60);
#         2. apply migrations (`authsvc migrate`), unless AUTH_SKIP_MIGRATIONS is true;
#         3. if AUTH_CREATE_KEY_RING is true and no AUTH_JWT_PRIVATE_KEY(_FILE) is configured,
#            create the signing key ring in its store (AUTH_KEY_STORE: AUTH_KEYS_DIR or the
#            database) when there is none yet (`authsvc keys generate`); an existing ring is
#            always kept;
#         4. likewise, if AUTH_CREATE_KEY_RING is true and AUTH_AUDIT_HMAC_KEY is not set,
#            create the audit HMAC key in AUTH_KEYS_DIR when there is none yet
#            (`authsvc keys audit-key`, which always keeps an existing key);
#         5. replace itself with `authsvc serve SERVE OPTIONS...`, so the server is PID 1 and
#            receives SIGTERM from `docker stop` directly.
#
#   entrypoint.sh COMMAND [ARGS...]
#       Any other first argument is handed to the authsvc CLI unchanged, with no waiting and no
#       migrations: `exec authsvc COMMAND ARGS...` (e.g. `docker compose run --rm authsvc
#       migrate`, or `docker run --rm IMAGE --help` to list the commands).
#       There is deliberately no fallback to running arbitrary programs; to get a shell use
#       `docker run --entrypoint sh ...`.
set -eu

# True for 1/true/yes/on in any case, as the service's own settings read booleans.
is_true() {
    case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

# A Fernet key: url-safe base64 of 32 random bytes (what `Fernet.generate_key()` makes).
new_fernet_key() {
    python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'
}

if [ -z "${AUTH_DATA_ENCRYPTION_KEY:-}" ] && is_true "${AUTH_CREATE_KEY_RING:-}"; then
    keys_dir="${AUTH_KEYS_DIR:-var/keys}"
    key_file="$keys_dir/data-encryption.key"
    if [ ! -s "$key_file" ]; then
        mkdir -p "$keys_dir"
        temporary="$(umask 077 && mktemp "$keys_dir/.tmp-XXXXXX")"
        new_fernet_key >"$temporary"
        # The key appears whole or not at all; when two first starts race, both use the
        # one that was linked first.
        ln "$temporary" "$key_file" 2>/dev/null || true
        rm -f "$temporary"
        echo "entrypoint: created the data encryption key in $key_file" >&2
    fi
    AUTH_DATA_ENCRYPTION_KEY="$(cat "$key_file")"
    export AUTH_DATA_ENCRYPTION_KEY
fi

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve)
        shift
        ;;
    *)
        exec authsvc "$@"
        ;;
esac

authsvc wait-for-db --timeout "${AUTH_DB_WAIT_TIMEOUT:-60}"

if is_true "${AUTH_SKIP_MIGRATIONS:-}"; then
    echo "entrypoint: AUTH_SKIP_MIGRATIONS is set; not running migrations" >&2
else
    authsvc migrate
fi

if is_true "${AUTH_CREATE_KEY_RING:-}" \
    && [ -z "${AUTH_JWT_PRIVATE_KEY:-}${AUTH_JWT_PRIVATE_KEY_FILE:-}" ] \
    && ! authsvc keys list >/dev/null 2>&1; then
    # Fails (and so stops the start) if a ring exists but cannot be read: never overwrite it.
    authsvc keys generate
fi

if is_true "${AUTH_CREATE_KEY_RING:-}" && [ -z "${AUTH_AUDIT_HMAC_KEY:-}" ]; then
    authsvc keys audit-key
fi

exec authsvc serve "$@"
