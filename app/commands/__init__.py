"""The headless subcommands (download, query, the cluster run, the report, the dry run): no Textual."""
