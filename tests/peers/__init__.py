"""Independent peers (servers written by others) that the tests drive lwm2m_mpy against."""
