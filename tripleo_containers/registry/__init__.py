"""Registry v2 client: references, credentials, transport, manifests and blobs."""
