//! The plugin ABI of auth0-client (filled in by the plugins issue).
