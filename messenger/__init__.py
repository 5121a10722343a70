"""The tenant-closed secure messenger.

`messenger.server` (FastAPI app) and `messenger.store` (tables, migrations, rules) run the
service; `messenger.client` is the async SDK, `messenger.crypto` the end-to-end layer. The server
only stores and routes ciphertext and never imports the client.
"""
