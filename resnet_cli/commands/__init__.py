"""One module per subcommand (classify, summary, evaluate, embed, explain, export, train,
cache), each a function of the parsed requests that returns an ExitStatus; shared: stream
(config → engine → counted records), progress (bar or log lines), signals (Ctrl-C, SIGTERM)."""
