"""LwM2M core: paths, object store, device management, registration, the client."""
