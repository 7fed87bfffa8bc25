//! Point-in-time features.
