"""Use cases: the only way the UI, the command line, the sweep and sync change data.

Each public call is one write transaction that holds the change, its audit entry and
its sync mutation together (see ``unit.py``). No Textual, no HTTP.
"""
