"""What goes wrong with signing keys: missing, unreadable or unfit keys, key rings that are
there when they should not be (or not there when they should), and lifecycle commands the
ring refuses."""


class KeyConfigurationError(Exception):
    """The signing keys are missing, unreadable, or unfit for their algorithm."""


class KeyRingExistsError(KeyConfigurationError):
    """`generate` found a key ring and was not told to replace it."""


class KeyRingNotFoundError(KeyConfigurationError):
    """The key directory holds no key ring."""


class KeyLifecycleError(Exception):
    """A key command that the ring's state refuses: a second rotation while a key is staged,
    retiring the key that signs, naming a key the ring does not publish."""
