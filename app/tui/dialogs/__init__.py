"""Dialogs pushed over a screen: queue, go to, export/import ids, resume and quit, help, palette."""
