"""cheesechaser-tui: the Textual app, the command line and the loopback Hub.

Importing this package stays cheap and free of Textual, so the headless subcommands
(``serve``, ``demo-data``, ``download``) start fast.
"""

__version__ = "0.1.0"
