"""How many guesses a password would take: zxcvbn's estimate, bounded in cost.

zxcvbn (the Rust implementation, through `zxcvbn-rs-py`) models how attackers guess:
dictionaries of common passwords, words and names, keyboard walks, repeats, sequences, dates,
l33t spellings, plus words the caller says an attacker knows (the service's name, the user's
email address and username). Its guess count is what `PasswordPolicy` compares with
`password_min_guesses`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from zxcvbn_rs_py import zxcvbn

# Only this many leading characters are estimated. The estimator holds the GIL (a thread
# would not keep the event loop free), and its cost grows steeply with length: up to ~18 ms
# for 32 crafted characters, ~60 ms for 64, ~200 ms for 100 (where the library itself stops
# reading). A password whose first 32 characters are hard to guess is hard to guess.
ESTIMATED_LENGTH = 32

# Email addresses and usernames are split on these into the words an attacker would try.
_WORD_SEPARATORS = re.compile(r"[\s@._+\-]+")
# Shorter pieces ("a", "io") would only make the estimator see "words" everywhere.
MIN_CONTEXT_WORD_LENGTH = 3

# Said when the estimator gives no warning of its own (it stays silent above ~1e8 guesses).
GENERIC_WARNING = "This password is too easy to guess."
SUGGESTION = "Add another word or two; uncommon words are better."


@dataclass(frozen=True, slots=True)
class GuessEstimate:
    """Estimated guesses, and why the password is guessable when the estimator can say."""

    guesses: float
    warning: str | None


def estimate_guesses(password: str, context_words: Iterable[str] = ()) -> GuessEstimate:
    """zxcvbn's guess count for the first `ESTIMATED_LENGTH` characters of `password`,
    with `context_words` counted as known to the attacker."""
    # Text without a UTF-8 form (lone surrogates) cannot cross into Rust: such a password is
    # refused by `PasswordPolicy` anyway, and such a word could not be in a storable password.
    words = [word for word in context_words if is_encodable(word)]
    result = zxcvbn(password[:ESTIMATED_LENGTH], words)
    warning = result.feedback.warning if result.feedback else None
    return GuessEstimate(guesses=float(result.guesses), warning=str(warning) if warning else None)


def is_encodable(text: str) -> bool:
    """Whether `text` has a UTF-8 form; a JSON body can carry lone surrogates, which do not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def words_from(*texts: str | None) -> list[str]:
    """The words an attacker would try from `texts` (email addresses, usernames, names):
    each text whole, NFKC-normalised and case-folded, and its pieces between separators,
    without duplicates."""
    words: dict[str, None] = {}
    for text in texts:
        if not text:
            continue
        folded = unicodedata.normalize("NFKC", text.strip()).casefold()
        for word in (folded, *_WORD_SEPARATORS.split(folded)):
            if len(word) >= MIN_CONTEXT_WORD_LENGTH:
                words[word] = None
    return list(words)
