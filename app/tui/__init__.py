"""The Textual app: the App (:mod:`app.tui.app`), its screens, dialogs and widgets.

Everything that imports Textual lives under this folder; :mod:`app.core` is what it shares with
the headless commands (:mod:`app.commands`), which never import Textual.
"""
