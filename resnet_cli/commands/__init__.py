"""One module per subcommand (classify, summary, evaluate, embed, explain, export, train,
cache, models), each a function of the parsed requests that returns an ExitStatus: plan →
engine → sink → Report; shared: stream (the inputs, the records counted in the Report)."""
