"""One module per dashboard page: `layout(...)` and `register(app, services)`."""
