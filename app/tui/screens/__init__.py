"""The app's screens: dataset picker, archives, one archive, metadata query, downloads, history."""
