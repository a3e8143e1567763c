"""What the TUI and the headless commands share, with neither Textual nor argparse: settings,
the config file, the dataset catalogue, one pool factory, sessions, the downloads model, formats."""
