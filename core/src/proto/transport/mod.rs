//! BOLT 8 transport (placeholder).
