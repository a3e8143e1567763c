"""The app's screens: dataset picker, archives, one archive, queue dialog, downloads, help."""
