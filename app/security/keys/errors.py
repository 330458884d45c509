"""What goes wrong with signing keys: missing, unreadable or unfit keys, and key rings that
are there when they should not be (or not there when they should)."""


class KeyConfigurationError(Exception):
    """The signing keys are missing, unreadable, or unfit for their algorithm."""


class KeyRingExistsError(KeyConfigurationError):
    """`generate` found a key ring and was not told to replace it."""


class KeyRingNotFoundError(KeyConfigurationError):
    """The key directory holds no key ring."""
