"""Pure domain rules: no database, no terminal, no network.

Everything here works on plain values so it can be shared by the kiosk, the central
server and the sync merge, and tested without any I/O.
"""
