//! Shared code of the operator and agency tools.
