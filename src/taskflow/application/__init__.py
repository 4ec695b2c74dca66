"""The application layer: the generic `TaskService`, its unit of work, and the kind families' services."""
