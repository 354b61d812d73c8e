//! Example plugin `email-domain-connection` (its hooks arrive with the plugins issue).
