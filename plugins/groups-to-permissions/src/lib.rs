//! Example plugin `groups-to-permissions` (its hooks arrive with the plugins issue).
