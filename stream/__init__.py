"""The Faust app, its topics, agents, timers, web endpoints and the CLI: wiring only."""
