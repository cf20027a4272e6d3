"""Database access: connections, the embedded server, versioned migrations."""
