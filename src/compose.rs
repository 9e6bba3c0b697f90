//! Compose file editing (being written).
