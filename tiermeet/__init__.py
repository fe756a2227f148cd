"""tiermeet: tiered daily-management meetings for AI signals on the shop floor.

Importing the package does no work: engines, settings and the app are built by the
command line (``tiermeet.cli``) or by tests, never at import time.
"""

__version__ = "0.1.0"
