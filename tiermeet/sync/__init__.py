"""Offline sync: the protocol shared by devices and the central server, the merge rules,
the translation of named mutations into record changes, and the device's sync client."""
