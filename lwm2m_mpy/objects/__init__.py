"""Behaviour of the core objects: 0 Security, 1 Server, 3 Device (tables in lwm2m_mpy/tables)."""
