"""One call: options, the sans-I/O call core, the bridge that pumps it, the line between the
agents, the recorder, and the reader of what a call left behind."""
