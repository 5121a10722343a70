"""Four-eyes audit: the request workflow (`service`) and the hash-chained audit log (`log`).

The cryptography lives in `messenger.crypto` (Shamir shares of the audit key, threshold
decryption of seals); this package only stores, checks and records, and never holds a key.
"""
