//! Example plugin `audit-log` (its hooks arrive with the plugins issue).
