"""Re-encrypting what AUTH_DATA_ENCRYPTION_KEY protects under its first key: the step of a key
rotation between "list the new key first" and "drop the old one" (`authsvc keys
reencrypt-data`).

Two kinds of rows hold such ciphertext: TOTP secrets (`totp_factors`) and queued mail
(`outbox_messages`). Each is walked in keyset batches, one unit of work per batch, the batch's
rows locked while they are rewritten, so the service keeps running meanwhile: a TOTP check or
a dispatcher's claim waits for (or skips) the batch, never sees half of it. A row the first
key already decrypts is left alone, so running it again changes nothing; a row no key
decrypts is left alone too, and counted: its key must stay in the list.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Final, Generic, TypeVar

from app.repositories.accounts.second_factors import TotpFactorRepository
from app.repositories.common.outbox_messages import OutboxMessageRepository
from app.security.encryption import DecryptionFailed, Encryptor
from app.services.common.context import Service
from app.services.common.unit_of_work import run_unit_of_work

DEFAULT_BATCH_SIZE: Final = 500

StoredT = TypeVar("StoredT", str, bytes)


@dataclass(frozen=True, slots=True)
class Reencryption:
    """What re-encrypting one kind of data came to."""

    what: str  # "TOTP secrets", "queued mails"
    reencrypted: int  # rewritten under the first key
    current: int  # already under the first key: left alone
    undecryptable: int  # under no key of the list: left alone

    @property
    def total(self) -> int:
        return self.reencrypted + self.current + self.undecryptable


@dataclass(frozen=True, slots=True)
class _Ciphertexts(Generic[StoredT]):
    """One kind of encrypted rows: how to read a locked batch and write it back."""

    what: str
    lock_batch: Callable[[uuid.UUID | None, int], Awaitable[list[tuple[uuid.UUID, StoredT]]]]
    replace: Callable[[Mapping[uuid.UUID, StoredT]], Awaitable[None]]
    to_bytes: Callable[[StoredT], bytes]
    from_bytes: Callable[[bytes], StoredT]


@dataclass(frozen=True, slots=True)
class _Batch:
    reencrypted: int
    current: int
    undecryptable: int
    rows: int
    last_id: uuid.UUID | None


class DataReencryption(Service):
    """Re-encrypts every data secret under the first key of AUTH_DATA_ENCRYPTION_KEY."""

    async def reencrypt_all(self, batch_size: int = DEFAULT_BATCH_SIZE) -> list[Reencryption]:
        """Walk the TOTP secrets, then the queued mails; one committed unit of work per batch
        of `batch_size` rows. Returns the counts of each."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        encryptor = self.context.data_encryptor()
        factors = TotpFactorRepository(self.session)
        outbox = OutboxMessageRepository(self.session)
        totp_secrets: _Ciphertexts[str] = _Ciphertexts(
            "TOTP secrets",
            factors.lock_secrets_after,
            factors.replace_secrets,
            str.encode,
            bytes.decode,
        )
        queued_mails: _Ciphertexts[bytes] = _Ciphertexts(
            "queued mails", outbox.lock_payloads_after, outbox.replace_payloads, bytes, bytes
        )
        return [
            await self._reencrypt(totp_secrets, encryptor, batch_size),
            await self._reencrypt(queued_mails, encryptor, batch_size),
        ]

    async def _reencrypt(
        self, kind: _Ciphertexts[StoredT], encryptor: Encryptor, batch_size: int
    ) -> Reencryption:
        reencrypted = current = undecryptable = 0
        after: uuid.UUID | None = None
        while True:
            # A batch re-run after a conflict reads its rows again and counts them afresh.
            batch = await run_unit_of_work(
                self.session, partial(self._batch, kind, encryptor, after, batch_size)
            )
            reencrypted += batch.reencrypted
            current += batch.current
            undecryptable += batch.undecryptable
            if batch.rows < batch_size:
                return Reencryption(kind.what, reencrypted, current, undecryptable)
            after = batch.last_id

    async def _batch(
        self,
        kind: _Ciphertexts[StoredT],
        encryptor: Encryptor,
        after: uuid.UUID | None,
        batch_size: int,
    ) -> _Batch:
        rows = await kind.lock_batch(after, batch_size)
        replaced: dict[uuid.UUID, StoredT] = {}
        current = undecryptable = 0
        for row_id, stored in rows:
            try:
                fresh = encryptor.reencrypt(kind.to_bytes(stored))
            except DecryptionFailed:
                undecryptable += 1
                continue
            if fresh is None:
                current += 1
            else:
                replaced[row_id] = kind.from_bytes(fresh)
        await kind.replace(replaced)
        last_id = rows[-1][0] if rows else None
        return _Batch(len(replaced), current, undecryptable, len(rows), last_id)
